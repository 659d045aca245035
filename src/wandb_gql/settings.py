"""Where to connect and as whom: flag > environment > netrc, resolved once into a frozen value.

As wandb does: WANDB_BASE_URL (default https://api.wandb.ai), WANDB_API_KEY, WANDB_ENTITY,
WANDB_HTTP_TIMEOUT, and netrc ($NETRC or ~/.netrc) with machine = host[:port] of the base URL.
"""

from __future__ import annotations

import ipaddress
import netrc
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_BASE_URL = "https://api.wandb.ai"
DEFAULT_TIMEOUT = 30.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _netrc_key(netloc: str) -> str | None:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        auth = netrc.netrc(str(path)).authenticators(netloc)
    except (netrc.NetrcParseError, OSError) as e:
        raise ConfigError(f"cannot read {path}: {getattr(e, 'msg', e)}", hint="fix or remove that netrc file") from None
    return auth[2] if auth else None


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)  # never in repr, logs or errors
    entity: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    insecure: bool = False

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @classmethod
    def resolve(cls, base_url: str | None = None, api_key: str | None = None, entity: str | None = None,
                timeout: float | None = None, insecure: bool = False) -> "Settings":
        env = os.environ
        base = (base_url or env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"invalid base URL {base!r}", hint="use http(s)://host[:port], e.g. https://api.wandb.ai")
        if parts.hostname in ("wandb.ai", "www.wandb.ai"):
            raise ConfigError(f"{base} is W&B's web app, not its API",
                              hint="use https://api.wandb.ai (or your server's API URL)")
        key = api_key or env.get("WANDB_API_KEY") or _netrc_key(parts.netloc)
        if not key:
            raise ConfigError(
                f"no API key for {parts.netloc}",
                hint=f"pass --api-key, set WANDB_API_KEY, or add 'machine {parts.netloc} login user password KEY' to ~/.netrc")
        if parts.scheme == "http" and not _is_loopback(parts.hostname) and not insecure:
            raise ConfigError(f"refusing to send the API key over plain http to {parts.hostname}",
                              hint="use https, or pass --insecure / insecure=True if you really mean it")
        if timeout is None:
            raw = env.get("WANDB_HTTP_TIMEOUT")
            try:
                timeout = float(raw) if raw else DEFAULT_TIMEOUT
            except ValueError:
                raise ConfigError(f"WANDB_HTTP_TIMEOUT={raw!r} is not a number of seconds") from None
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, not {timeout}")
        return cls(base, key, entity or env.get("WANDB_ENTITY") or None, float(timeout), insecure)
