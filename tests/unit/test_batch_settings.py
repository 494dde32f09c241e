"""Batch settings of an actor in turing.toml: durations in words or seconds, defaults, and
errors that name the file and key; the settings reach the actor a step resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from turing.config import load_config
from turing.errors import ConfigError
from turing.project import Project

ACTOR = '[project]\n\n[actors.gpt]\nspec = "openai:gpt-4o-mini"\nprice_input = 0.15\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "turing.toml"
    path.write_text(text)
    return path


def test_batch_settings_reach_the_actor(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ACTOR + 'batch = "auto"\nbatch_min_tasks = 50\nbatch_max_wait = "2h"\n'
        'batch_poll = 30\nbatch_reask = "sync"\nbatch_reask_deadline = "6h"\n'
        "batch_price_factor = 0.4\n",
    )
    settings = Project(load_config(path, env={})).resolve_actor("gpt").settings  # type: ignore[attr-defined]
    assert (settings.batch, settings.batch_min_tasks, settings.batch_max_wait) == ("auto", 50, 7200)
    assert (settings.batch_poll, settings.batch_reask) == (30, "sync")
    assert settings.batch_reask_deadline == 6 * 3600
    assert settings.batch_cost(1_000_000, 0) == pytest.approx(0.15 * 0.4)


def test_batch_is_off_by_default(tmp_path: Path) -> None:
    settings = Project(load_config(write(tmp_path, ACTOR), env={})).resolve_actor("gpt").settings  # type: ignore[attr-defined]
    assert (settings.batch, settings.batch_reask, settings.batch_price_factor) == (
        "off",
        "batch",
        0.5,
    )
    assert settings.batch_completion_window == "24h"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('batch = "yes"', "actors.gpt.ActorTable.batch"),
        ('batch_poll = "soon"', "is not a duration"),
        ("batch_min_tasks = 0", "batch_min_tasks"),
        ("batch_price_factor = 2", "batch_price_factor"),
        ('batch_reask = "later"', "batch_reask"),
        ('batch_completion_window = "48h"', "batch_completion_window"),
    ],
)
def test_bad_batch_settings_name_file_and_key(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, ACTOR + line + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value) and expected in str(info.value)
