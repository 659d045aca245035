"""The server's database holds file contents, hashed keys and the secret storage URLs are signed
with: it is made readable by its owner only (0600, in a 0700 directory when the server creates
the directory). A directory or database the user made themselves is left as it is, with a
warning if others can read it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path


def prepare(path: Path) -> list[str]:
    """Create `path`'s directory (0700) and an empty database file (0600) if missing; SQLite gives
    its -wal and -shm files the database's mode. Returns warnings about what others can read."""
    warnings = []
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
    elif os.stat(directory).st_mode & 0o077:
        warnings.append(f"{directory} is readable by other users (mode {_mode(directory)}); "
                        f"the server's database is private: chmod 700 {directory}")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            warnings.append(f"{path} is readable by other users (mode {_mode(path)}); it holds file "
                            f"contents and the server's secret: chmod 600 {path}")
    else:
        os.close(fd)
    return warnings


def prepare_and_warn(path: Path) -> None:
    for warning in prepare(path):
        sys.stderr.write(f"warning: {warning}\n")


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(os.stat(path).st_mode))[2:]
