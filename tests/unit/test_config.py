"""turing.toml loading: defaults, environment overrides, and errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from turing.config import DEFAULT_DATABASE, find_config, load_config
from turing.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turing.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, env={})
    assert config.project.database == DEFAULT_DATABASE
    assert config.project.workflows == [] and config.actors == {}


def test_values_and_relative_sqlite_path(tmp_path: Path) -> None:
    text = '[project]\ndatabase = "sqlite:///data/t.db"\nworkflows = ["a", "b.py"]\n'
    path = write(tmp_path, text + '[actors]\nx = "fake:y"\n')
    config = load_config(path, env={})
    assert config.project.workflows == ["a", "b.py"] and config.actors == {"x": "fake:y"}
    assert config.database_url() == f"sqlite:///{(tmp_path / 'data' / 't.db').resolve()}"


@pytest.mark.parametrize(
    "url",
    ["sqlite:////abs/t.db", "sqlite:///:memory:", "postgresql://u@h:5432/db?schema=s"],
)
def test_absolute_and_server_urls_are_kept(tmp_path: Path, url: str) -> None:
    config = load_config(write(tmp_path, f'[project]\ndatabase = "{url}"\n'), env={})
    assert config.database_url() == url


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\ndatabase = "sqlite:///a.db"\n[actors]\nwriter = "a:b"\n')
    env = {
        "TURING_DATABASE": "postgresql://x@y/z",
        "TURING_WORKFLOWS": "one, two ,",
        "TURING_ACTOR_WRITER": "ollama:qwen2.5:7b",
        "TURING_ACTOR_NEW": "openai:gpt-4o-mini",
    }
    config = load_config(path, env=env)
    assert config.project.database == "postgresql://x@y/z"
    assert config.project.workflows == ["one", "two"]
    assert config.actors == {"writer": "ollama:qwen2.5:7b", "new": "openai:gpt-4o-mini"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[project]\ndatabase = "x"\ndatabase = "y"\n', "invalid TOML"),
        ("[project\n", "line 1"),
        ('[project]\ndatabse = "x"\n', "project.databse: unknown key"),
        ('[projekt]\nname = "x"\n', "projekt: unknown key"),
        ("[project]\nworkflows = 3\n", "project.workflows"),
        ("[actors]\nx = 3\n", "actors.x"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_find_config_walks_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("TURING_CONFIG", raising=False)
    assert find_config(deep) == path
    monkeypatch.setenv("TURING_CONFIG", "/elsewhere/turing.toml")
    assert find_config(deep) == Path("/elsewhere/turing.toml")
