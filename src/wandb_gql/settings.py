"""Where to connect and as whom, resolved once into a frozen value, the way wandb does it.

Base URL and entity: flag > environment (WANDB_BASE_URL, WANDB_ENTITY) > wandb's settings file
($WANDB_CONFIG_DIR/settings, default ~/.config/wandb/settings, `[default] base_url = ...`, which
`wandb login --host URL` writes) > https://api.wandb.ai. Key: flag > WANDB_API_KEY > netrc
($NETRC or ~/.netrc) with machine = host[:port] of the base URL (where `wandb login` puts it).
Settings remember where the key and the URL came from (for `whoami`), never the key in a repr.
"""

from __future__ import annotations

import configparser
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


def wandb_settings_file() -> Path:
    """wandb's global settings file (it may not exist)."""
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or str(Path.home() / ".config" / "wandb")
    return Path(config_dir) / "settings"


def _wandb_settings(path: Path) -> dict[str, str]:
    """The [default] section of wandb's settings file; empty when there is none."""
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read wandb's settings file {path}: {e}",
                          hint="fix it, or set WANDB_CONFIG_DIR to another directory") from None
    if not parser.has_section("default"):
        return {}
    return {k: v.strip() for k, v in parser.items("default") if v and v.strip()}


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)  # never in repr, logs or errors
    entity: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    insecure: bool = False
    # Where things came from, for `whoami`: "flag" | "env" | "netrc" (key);
    # "flag" | "env" | "settings" | "default" (base URL). The file, when it was read.
    key_source: str = "flag"
    base_url_source: str = "default"
    settings_file: str | None = None

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @classmethod
    def resolve(cls, base_url: str | None = None, api_key: str | None = None, entity: str | None = None,
                timeout: float | None = None, insecure: bool = False) -> "Settings":
        env = os.environ
        file = wandb_settings_file()
        stored = _wandb_settings(file)
        chosen = [("flag", base_url), ("env", env.get("WANDB_BASE_URL")), ("settings", stored.get("base_url")),
                  ("default", DEFAULT_BASE_URL)]
        base_url_source, raw_base = next((src, v) for src, v in chosen if v)
        base = str(raw_base).strip().rstrip("/")
        origin = {"env": " (from WANDB_BASE_URL)", "settings": f" (from {file})"}.get(base_url_source, "")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"invalid base URL {base!r}{origin}",
                              hint="use http(s)://host[:port], e.g. https://api.wandb.ai")
        if parts.hostname in ("wandb.ai", "www.wandb.ai"):
            raise ConfigError(f"{base}{origin} is W&B's web app, not its API",
                              hint="use https://api.wandb.ai (or your server's API URL)")
        key, key_source = api_key, "flag"
        if not key:
            key, key_source = env.get("WANDB_API_KEY"), "env"
        if not key:
            key, key_source = _netrc_key(parts.netloc), "netrc"
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
        return cls(base, key, entity or env.get("WANDB_ENTITY") or stored.get("entity") or None, float(timeout),
                   insecure, key_source=key_source, base_url_source=base_url_source,
                   settings_file=str(file) if stored else None)
