"""Settings: flag > environment > wandb's settings file > default (netrc for the key), where
each came from, and the refusal to leak a key over plain http."""

from __future__ import annotations

import pytest

from wandb_gql import ConfigError, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_HTTP_TIMEOUT", "WANDB_CONFIG_DIR"):
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


def write_wandb_settings(directory, **values):
    """As `wandb login --host URL` leaves it."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{k} = {v}\n" for k, v in values.items())
    (directory / "settings").write_text(f"[default]\n{lines}")


def test_wandb_login_host_is_followed(clean_env):
    """wandb login --host writes base_url to ~/.config/wandb/settings and the key to netrc."""
    write_wandb_settings(clean_env / ".config" / "wandb", base_url="http://localhost:8080")
    write_netrc(clean_env / "netrc", "localhost:8080", "from-netrc")
    s = Settings.resolve()
    assert (s.base_url, s.api_key) == ("http://localhost:8080", "from-netrc")
    assert (s.base_url_source, s.key_source) == ("settings", "netrc")
    assert s.settings_file == str(clean_env / ".config" / "wandb" / "settings")


def test_wandb_config_dir_moves_the_settings_file(monkeypatch, clean_env):
    write_wandb_settings(clean_env / "elsewhere", base_url="https://wandb.example.com/", entity="lab")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(clean_env / "elsewhere"))
    s = Settings.resolve(api_key="k")
    assert (s.base_url, s.entity, s.base_url_source, s.key_source) == ("https://wandb.example.com", "lab",
                                                                       "settings", "flag")


def test_precedence_flag_over_env_over_settings_file_over_default(monkeypatch, clean_env):
    assert Settings.resolve(api_key="k").base_url_source == "default"
    write_wandb_settings(clean_env / ".config" / "wandb", base_url="https://file.example.com", entity="file")
    assert Settings.resolve(api_key="k").base_url == "https://file.example.com"
    monkeypatch.setenv("WANDB_BASE_URL", "https://env.example.com")
    monkeypatch.setenv("WANDB_ENTITY", "env")
    monkeypatch.setenv("WANDB_API_KEY", "env-key")
    s = Settings.resolve()
    assert (s.base_url, s.entity, s.base_url_source, s.key_source) == ("https://env.example.com", "env", "env", "env")
    s = Settings.resolve(base_url="https://flag.example.com", entity="flag", api_key="flag-key")
    assert (s.base_url, s.entity, s.base_url_source, s.key_source) == ("https://flag.example.com", "flag",
                                                                       "flag", "flag")


def test_a_bad_url_in_the_settings_file_says_where_it_came_from(clean_env):
    write_wandb_settings(clean_env / ".config" / "wandb", base_url="https://wandb.ai")
    with pytest.raises(ConfigError, match="settings"):
        Settings.resolve(api_key="k")


def test_an_unreadable_settings_file_is_a_config_error(clean_env):
    directory = clean_env / ".config" / "wandb"
    directory.mkdir(parents=True)
    (directory / "settings").write_text("base_url = no section header\n")
    with pytest.raises(ConfigError, match="settings file"):
        Settings.resolve(api_key="k")


def test_a_settings_file_without_default_section_is_ignored(clean_env):
    directory = clean_env / ".config" / "wandb"
    directory.mkdir(parents=True)
    (directory / "settings").write_text("[other]\nbase_url = https://x\n")
    s = Settings.resolve(api_key="k")
    assert s.base_url == "https://api.wandb.ai" and s.settings_file is None


def test_sources_never_carry_the_key(clean_env):
    write_netrc(clean_env / "netrc", "api.wandb.ai", "very-secret-key")
    s = Settings.resolve()
    assert s.key_source == "netrc" and "very-secret-key" not in repr(s)
