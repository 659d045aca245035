"""Settings: flag > environment > netrc, and the refusal to leak a key over plain http."""

from __future__ import annotations

import pytest

from wandb_gql import ConfigError, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_HTTP_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write_netrc(path, machine, key):
    path.write_text(f"machine {machine}\n  login user\n  password {key}\n")
    path.chmod(0o600)


def test_precedence_flag_over_env_over_netrc(monkeypatch, clean_env):
    write_netrc(clean_env / "netrc", "127.0.0.1:9999", "from-netrc")
    s = Settings.resolve(base_url="http://127.0.0.1:9999")
    assert s.api_key == "from-netrc" and s.base_url == "http://127.0.0.1:9999"
    monkeypatch.setenv("WANDB_API_KEY", "from-env")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("WANDB_ENTITY", "team")
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", "7.5")
    s = Settings.resolve()
    assert (s.api_key, s.base_url, s.entity, s.timeout) == ("from-env", "http://127.0.0.1:9999", "team", 7.5)
    s = Settings.resolve(api_key="from-flag", entity="me", timeout=3)
    assert (s.api_key, s.entity, s.timeout) == ("from-flag", "me", 3.0)


def test_netrc_machine_is_host_and_port(clean_env):
    write_netrc(clean_env / "netrc", "api.example.com", "k1")
    assert Settings.resolve(base_url="https://api.example.com").api_key == "k1"
    with pytest.raises(ConfigError, match="no API key for api.example.com:8443"):
        Settings.resolve(base_url="https://api.example.com:8443")


def test_default_base_url_is_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert Settings.resolve().base_url == "https://api.wandb.ai"


@pytest.mark.parametrize("url", ["http://example.com", "http://10.1.2.3:8080", "http://wandb.internal"])
def test_plain_http_to_a_remote_host_is_refused_unless_insecure(url):
    with pytest.raises(ConfigError, match="plain http") as info:
        Settings.resolve(base_url=url, api_key="secret-key")
    assert "secret-key" not in str(info.value) and info.value.exit_code == 2
    assert Settings.resolve(base_url=url, api_key="secret-key", insecure=True).insecure


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080",
                                 "https://example.com"])
def test_loopback_http_and_https_are_fine(url):
    assert Settings.resolve(base_url=url, api_key="k").base_url == url


@pytest.mark.parametrize("kwargs,phrase", [
    ({"base_url": "ftp://x"}, "invalid base URL"),
    ({"base_url": "https://wandb.ai"}, "web app, not its API"),
    ({"base_url": "https://x", "timeout": 0}, "timeout"),
])
def test_bad_settings(kwargs, phrase):
    with pytest.raises(ConfigError, match=phrase):
        Settings.resolve(api_key="k", **kwargs)


def test_bad_timeout_env(monkeypatch):
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="WANDB_HTTP_TIMEOUT"):
        Settings.resolve(base_url="https://x", api_key="k")


def test_key_is_not_in_repr():
    assert "topsecret" not in repr(Settings.resolve(base_url="https://x", api_key="topsecret"))
