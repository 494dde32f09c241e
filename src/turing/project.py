"""A project: configuration, the workflow modules it names, and the actors they resolve to.

Workflow modules are imported with the project folder first on `sys.path`. A module lists
its workflows in `WORKFLOWS` (else every module-level `Workflow` is taken) and may offer
actors in `ACTORS` (spec -> Actor), which `[actors]` entries can then name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from turing.actors.base import Actor
from turing.config import Config, find_config, load_config
from turing.errors import ActorError, ConfigError, TuringError, WorkflowDefinitionError
from turing.executor import Executor
from turing.registry import Registry
from turing.workflow import Workflow


class Project:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = Registry()
        self._actors: dict[str, Actor] = {}
        for module in self._import_modules():
            self._collect(module)

    @classmethod
    def load(cls, path: Path | str | None = None) -> Project:
        """From `path`, `TURING_CONFIG` or the nearest turing.toml (defaults if none)."""
        found = Path(path) if path is not None else find_config()
        return cls(load_config(found))

    @property
    def root(self) -> Path:
        return self.config.root

    def _import_modules(self) -> list[ModuleType]:
        root = str(self.root.resolve())
        if root not in sys.path:
            sys.path.insert(0, root)
        modules = []
        for ref in self.config.project.workflows:
            try:
                modules.append(_import(ref, self.root))
            except (TuringError, ConfigError):
                raise
            except Exception as exc:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                raise ConfigError(
                    f"{self.config.source}: workflow module {ref!r} failed to import: "
                    f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
                ) from exc
        return modules

    def _collect(self, module: ModuleType) -> None:
        listed = getattr(module, "WORKFLOWS", None)
        found = (
            list(listed)
            if listed is not None
            else [v for v in vars(module).values() if isinstance(v, Workflow)]
        )
        for wf in found:
            if not isinstance(wf, Workflow):
                raise ConfigError(f"{module.__name__}.WORKFLOWS holds {wf!r}, not a Workflow")
            self.registry.add(wf)
        for spec, actor in (getattr(module, "ACTORS", None) or {}).items():
            if not isinstance(actor, Actor):
                raise ConfigError(f"{module.__name__}.ACTORS[{spec!r}] is not an Actor")
            self._actors[spec] = actor

    def resolve_actor(self, ref: str) -> Actor:
        """Step actor reference -> `[actors]` spec (or the reference itself) -> Actor."""
        spec = self.config.actors.get(ref, ref)
        if spec in self._actors:
            return self._actors[spec]
        provider = spec.split(":", 1)[0] if ":" in spec else None
        offered = ", ".join(sorted(self._actors)) or "none"
        if ref not in self.config.actors and provider is None:
            raise ActorError(
                f'actor {ref!r} is not configured: add `{ref} = "provider:model"` under '
                f"[actors] in {self.config.source} "
                f"(actors offered by the workflow modules: {offered})"
            )
        raise ActorError(
            f"actor {ref!r} -> {spec!r}: no such actor; available: {offered} "
            "(model providers such as ollama/openai are configured as provider:model)"
        )

    def executor(self) -> Executor:
        return Executor(self.resolve_actor, settings=self.settings())

    def settings(self) -> Mapping[str, Any]:
        return {"database": self.config.database_url(), "root": str(self.root)}

    def workflow(self, key: str) -> Workflow:
        return self.registry.get(key)


def _import(ref: str, root: Path) -> ModuleType:
    if ref.endswith(".py"):
        path = (root / ref).resolve()
        if not path.is_file():
            raise ConfigError(f"workflow module file {ref!r} not found under {root}")
        name = f"_turing_workflows_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load workflow module file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(ref)
    except ModuleNotFoundError as exc:
        if exc.name and ref.startswith(exc.name):
            raise ConfigError(
                f"workflow module {ref!r} not found "
                f"(searched the project folder {root} and sys.path)"
            ) from exc
        raise
    except WorkflowDefinitionError:
        raise
