"""Protected tags from the user's config file: what every selection leaves out by default."""

from __future__ import annotations

import pytest

from wandb_gql.cleanup.config import DEFAULT_PROTECT_TAGS, config_path, protected_tags
from wandb_gql.cleanup.plan import Selection
from wandb_gql.errors import UsageError


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("WBGQL_CONFIG", str(path))
    return path


def test_without_a_file_the_defaults_hold(config):
    assert protected_tags() == DEFAULT_PROTECT_TAGS == ("keep", "protected")
    assert Selection.choose(where="state = crashed", action="delete").protect_tags == DEFAULT_PROTECT_TAGS


def test_the_file_changes_what_protects_a_run(config):
    config.write_text('[cleanup]\nprotect_tags = ["keep", "paper", "paper"]\n')
    assert protected_tags() == ("keep", "paper")
    assert Selection.choose(where="state = crashed", action="delete").protect_tags == ("keep", "paper")
    # a command's own list still wins
    assert Selection.choose(where="state = crashed", protect_tags=["x"]).protect_tags == ("x",)


@pytest.mark.parametrize("text", ['[cleanup]\nprotect_tags = "keep"\n', '[cleanup]\nprotect_tags = [""]\n',
                                  "[cleanup\n"])
def test_a_bad_file_is_one_clear_error(config, text):
    config.write_text(text)
    with pytest.raises(UsageError) as info:
        protected_tags()
    assert str(config) in info.value.message


def test_the_default_place_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("WBGQL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "wandb-gql" / "config.toml"
