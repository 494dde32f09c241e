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
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from turing import providers
from turing.actors.adaptive import AdaptiveLimits
from turing.actors.affinity import HostSchedulers
from turing.actors.base import Actor
from turing.actors.breaker import Breakers
from turing.actors.limited import LimitedActor
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.cache import ResponseCache
from turing.config import ActorTable, Config, find_config, load_config
from turing.errors import ActorError, ConfigError, TuringError, WorkflowDefinitionError
from turing.executor import Executor, RunLimits
from turing.limits.config import LimitsConfig
from turing.observe.events import Observer
from turing.registry import Registry
from turing.workflow import Workflow


@dataclass(frozen=True)
class ActorServices:
    """What the model actors of one executor share, built before them and passed in: the
    response cache, the shared limiter (a `turing.limits.Limiter`), the model hosts'
    schedulers (shared through the database when given one), their circuit breakers
    (one per host: an unreachable host is not called again until a probe reaches it) and
    the period budgets (a `turing.limits.spending.PeriodBudgets`: each call reserves its
    quote there first)."""

    cache: ResponseCache | None = None
    limiter: Any = None
    hosts: HostSchedulers = field(default_factory=HostSchedulers)
    breakers: Breakers = field(default_factory=Breakers)
    adaptive: AdaptiveLimits = field(default_factory=AdaptiveLimits)  # per host, on demand
    budgets: Any = None


class Project:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = Registry()
        self._actors: dict[str, Actor] = {}
        self._resolved: dict[str, Actor] = {}
        self._services = ActorServices()  # no database: no cache, no shared limits
        self._limits: tuple[int, LimitsConfig] | None = None
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
        """Step actor reference -> `[actors]` entry (spec, table, or another entry) -> Actor,
        with no database services (see `executor` for actors that have them)."""
        return self._resolve(ref, self._services, self._resolved)

    def _resolve(self, ref: str, services: ActorServices, memo: dict[str, Actor]) -> Actor:
        """Specs offered by the workflow modules (`ACTORS`) win; any other `provider:model`
        becomes a provider actor wrapped in a `ManagedActor` (retries, cost, cache)."""
        if ref not in memo:
            try:
                memo[ref] = self._build(ref, services)
            except ConfigError as exc:
                raise ActorError(str(exc), kind="config") from exc
        return memo[ref]

    def _build(self, ref: str, services: ActorServices) -> Actor:
        entry: str | ActorTable = self.config.actors.get(ref, ref)
        seen = {ref}
        while isinstance(entry, str) and entry in self.config.actors and entry not in seen:
            seen.add(entry)
            entry = self.config.actors[entry]
        table = entry if isinstance(entry, ActorTable) else None
        spec = entry if isinstance(entry, str) else _spec_of(ref, entry)
        if spec in self._actors:  # offered by a workflow module: under the limits too
            module_actor = self._actors[spec]
            if services.limiter is None and services.budgets is None:
                return module_actor
            return LimitedActor(module_actor, ref, services.limiter, self.limits, services.budgets)
        if ":" not in spec:
            offered = ", ".join(sorted(self._actors)) or "none"
            if ref not in self.config.actors:
                raise ActorError(
                    f'actor {ref!r} is not configured: add `{ref} = "provider:model"` under '
                    f"[actors] in {self.config.source} "
                    f"(actors offered by the workflow modules: {offered})"
                )
            raise ActorError(
                f"actor {ref!r} -> {spec!r}: no such actor; available: {offered} "
                "(model providers are configured as provider:model, e.g. ollama:qwen2.5:7b)"
            )
        fields = table.model_dump(exclude={"spec", "provider", "model"}) if table else {}
        settings = ActorSettings.parse(spec, name=ref, **fields)
        defaults = self.config.providers.get(settings.provider)
        if defaults is not None:
            settings = settings.with_(
                base_url=settings.base_url or defaults.base_url,
                api_key_env=settings.api_key_env or defaults.api_key_env,
            )
        host = None
        if defaults is not None and defaults.schedules_host:
            # models_resident unset: no residency ordering, host_concurrency still holds
            host = services.hosts.get(
                settings.url,
                models_resident=defaults.models_resident or 0,
                max_concurrency=defaults.host_concurrency,
                max_wait_s=defaults.scheduler_wait(),
                shared=defaults.shared_host,
            )
        cache = services.cache
        shared = (services.limiter, self.limits) if services.limiter is not None else None
        breaker = services.breakers.get(
            settings.url,
            threshold=defaults.circuit_failures if defaults is not None else None,
            cooldown_s=defaults.circuit_cooldown_s if defaults is not None else None,
        )
        return ManagedActor(
            providers.create(settings),
            settings,
            cache=lambda: cache,
            limits=lambda: shared if shared is not None and shared[1].keys() else None,
            host=host,
            breaker=breaker,
            budgets=services.budgets,
            adaptive=services.adaptive.get(settings.url, settings.max_concurrency)
            if settings.concurrency == "adaptive"
            else None,
        )

    @property
    def limits(self) -> LimitsConfig:
        """The shared limits in force: turing.toml's `[limits.concurrency]` and
        `[limits.rate]` plus those declared on the workflows (the stricter wins)."""
        if self._limits is None or self._limits[0] != len(self.registry):
            declared = {wf.name: wf.limits for wf in self.registry if wf.limits}
            self._limits = (len(self.registry), self.config.limits.with_workflows(declared))
        return self._limits[1]

    def executor(
        self, services: ActorServices | None = None, observer: Observer | None = None
    ) -> Executor:
        """An executor whose actors use `services` (built first by the caller: the
        orchestrator gives the database's cache, limiter and host coordination), telling
        `observer` of its runs (traces)."""
        limits = self.config.limits
        if services is None:
            resolve = self.resolve_actor
        else:
            memo: dict[str, Actor] = {}

            def resolve(ref: str) -> Actor:
                return self._resolve(ref, services, memo)

        return Executor(
            resolve,
            settings=self.settings(),
            limits=RunLimits(limits.run_tokens, limits.run_cost),
            observer=observer,
        )

    def settings(self) -> Mapping[str, Any]:
        return {"database": self.config.database_url(), "root": str(self.root)}

    def workflow(self, key: str) -> Workflow:
        return self.registry.get(key)


def _spec_of(ref: str, table: ActorTable) -> str:
    if table.spec:
        return table.spec
    if table.provider and table.model:
        return f"{table.provider}:{table.model}"
    raise ConfigError(f'[actors.{ref}] needs spec = "provider:model" (or provider and model)')


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
    top = ref.partition(".")[0]
    loaded = sys.modules.get(top)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    ours = (root / f"{top}.py").exists() or (root / top).is_dir()
    if origin is not None and ours and not Path(origin).resolve().is_relative_to(root.resolve()):
        # Another project's module of the same name was imported earlier: load ours.
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
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
