"""Every path form people paste, and the ones that cannot be read."""

from __future__ import annotations

import pytest

from wandb_gql import ProjectPath, RunPath, UsageError, parse_project_path, parse_run_path


@pytest.mark.parametrize("text,expected", [
    ("demo/vision", ("demo", "vision")),
    ("vision", (None, "vision")),
    (" demo/vision ", ("demo", "vision")),
    ("https://wandb.ai/demo/vision", ("demo", "vision")),
    ("https://wandb.ai/demo/vision/", ("demo", "vision")),
    ("https://wandb.ai/demo/vision/workspace", ("demo", "vision")),
    ("https://wandb.ai/demo/vision/workspace?nw=nwuserada", ("demo", "vision")),
    ("https://wandb.ai/demo/vision/table?nw=x#frag", ("demo", "vision")),
    ("wandb.ai/demo/vision", ("demo", "vision")),
    ("wandb.ai/demo/vision/workspace?nw=abc", ("demo", "vision")),
    ("http://localhost:8080/demo/vision/overview", ("demo", "vision")),
])
def test_project_forms(text, expected):
    assert parse_project_path(text) == ProjectPath(*expected)


@pytest.mark.parametrize("text,expected", [
    ("demo/vision/abc123", ("demo", "vision", "abc123")),
    ("demo/vision/runs/abc123", ("demo", "vision", "abc123")),
    ("vision/abc123", (None, "vision", "abc123")),
    ("https://wandb.ai/demo/vision/runs/abc123", ("demo", "vision", "abc123")),
    ("https://wandb.ai/demo/vision/runs/abc123?nw=nwuserada", ("demo", "vision", "abc123")),
    ("https://wandb.ai/demo/vision/runs/abc123/", ("demo", "vision", "abc123")),
    ("https://wandb.ai/demo/vision/runs/abc123/overview", ("demo", "vision", "abc123")),
    ("https://wandb.ai/demo/vision/runs/abc123/workspace?nw=1", ("demo", "vision", "abc123")),
    ("https://wandb.example.com/demo/vision/runs/abc123/logs", ("demo", "vision", "abc123")),
    ("wandb.ai/demo/vision/runs/abc123?nw=x", ("demo", "vision", "abc123")),
])
def test_run_forms(text, expected):
    assert parse_run_path(text) == RunPath(*expected)


@pytest.mark.parametrize("text", ["", "  ", "demo/", "/vision", "demo//vision", "a/b/c", "a/b/c/d/e",
                                  "https://wandb.ai/", "https://wandb.ai/demo", "https://wandb.ai/demo/vision/runs/x",
                                  "ftp://wandb.ai/demo/vision", None])
def test_unreadable_project_paths_name_the_forms(text):
    with pytest.raises(UsageError) as info:
        parse_project_path(text)
    assert "ENTITY/PROJECT" in str(info.value) and info.value.exit_code == 2


@pytest.mark.parametrize("text", ["", "demo/", "run", "a/b/c/d/e", "demo/vision/notruns/x", "demo/vision/runs/",
                                  "https://wandb.ai/demo/vision", "https://wandb.ai/demo/vision/runs",
                                  "https://wandb.ai/demo/vision/runs/x/nonsense"])
def test_unreadable_run_paths_name_the_forms(text):
    with pytest.raises(UsageError, match="ENTITY/PROJECT/RUN_ID"):
        parse_run_path(text)


def test_paths_print_as_they_read():
    assert str(parse_run_path("https://wandb.ai/demo/vision/runs/x")) == "demo/vision/x"
    assert str(parse_project_path("vision")) == "vision"
