"""The project file `turing.toml`, with `TURING_*` environment overrides.

    [project]
    name = "talent"
    database = "sqlite:///talent.db"        # TURING_DATABASE
    workflows = ["talent.workflows"]        # TURING_WORKFLOWS (comma-separated)

    [actors]                                # TURING_ACTOR_<NAME>=spec
    skills = "talent:offline"               # step actor reference -> actor spec

Errors say which file, line and key is wrong; unknown keys are errors, not ignored,
because a misspelled key silently falling back to a default is how prompts go wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turing.errors import ConfigError

CONFIG_NAME = "turing.toml"
DEFAULT_DATABASE = "sqlite:///turing.db"


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "turing"
    database: str = DEFAULT_DATABASE
    workflows: list[str] = Field(default_factory=list)


class Config(BaseModel):
    """Validated project configuration; `root` is the folder relative paths resolve against."""

    model_config = ConfigDict(extra="forbid")

    project: ProjectSettings = Field(default_factory=ProjectSettings)
    actors: dict[str, str] = Field(default_factory=dict)
    root: Path = Path()
    source: str = "(defaults)"

    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against `root`."""
        url = self.project.database
        prefix = "sqlite:///"
        if (
            url.startswith(prefix)
            and not url.startswith(prefix + "/")
            and url != prefix + ":memory:"
        ):
            return prefix + str((self.root / url[len(prefix) :]).resolve())
        return url


def find_config(start: Path | None = None) -> Path | None:
    """`TURING_CONFIG`, else the nearest turing.toml in the folder or its parents."""
    explicit = os.environ.get("TURING_CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment and validate; raise ConfigError saying where."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    root = Path.cwd()
    source = "(defaults)"
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        source = str(path)
        root = path.resolve().parent
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc
    _apply_env(data, env)
    try:
        return Config.model_validate({**data, "root": root, "source": source})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {_describe(err)}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None


def _describe(err: Mapping[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key"
    return str(err.get("msg", "invalid"))


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    project = data.setdefault("project", {})
    if not isinstance(project, dict):
        return  # let validation report the wrong type
    if "TURING_DATABASE" in env:
        project["database"] = env["TURING_DATABASE"]
    if "TURING_WORKFLOWS" in env:
        project["workflows"] = [m.strip() for m in env["TURING_WORKFLOWS"].split(",") if m.strip()]
    actors = data.setdefault("actors", {})
    if isinstance(actors, dict):
        for key, value in env.items():
            if key.startswith("TURING_ACTOR_") and len(key) > len("TURING_ACTOR_"):
                actors[key[len("TURING_ACTOR_") :].lower()] = value
