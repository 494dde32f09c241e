"""The project file `turing.toml`, with `TURING_*` environment overrides.

    [project]
    name = "talent"
    database = "sqlite:///talent.db"        # TURING_DATABASE
    workflows = ["talent.workflows"]        # TURING_WORKFLOWS (comma-separated)

    [actors]                                # TURING_ACTOR_<NAME>=spec
    skills = "talent:offline"               # step actor reference -> actor spec
    writer = "local_qwen"                   # ... or another entry's name

    [actors.local_qwen]                     # a model with its settings
    spec = "ollama:qwen2.5:7b"
    price_input = 0.0                       # per million tokens
    max_concurrency = 4                     # with concurrency = "adaptive": the ceiling

    [providers.ollama]                      # TURING_PROVIDER_OLLAMA_URL
    base_url = "http://127.0.0.1:11434"
    models_resident = 1                     # model-affinity scheduling of this host
    host_concurrency = 1                    # (either one gives the host a scheduler)
    max_wait_s = 300                        # starvation bound; "off" for pure throughput
    shared_host = false                     # true: one model phase for every process (db)

    [limits]                                # per run (task) and per batch (turing run)
    batch_cost = 5.0

    [observability]                         # OpenTelemetry traces (docs/operations.md)
    tracing = "auto"                        # true: require turing[otel]; false: off
    capture_content = false                 # prompts and answers on spans (opt-in)

Errors say which file, line and key is wrong; unknown keys are errors, not ignored,
because a misspelled key silently falling back to a default is how prompts go wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from turing.actors.affinity import DEFAULT_MAX_WAIT_S
from turing.actors.breaker import DEFAULT_COOLDOWN_S, DEFAULT_THRESHOLD
from turing.errors import ConfigError
from turing.limits.config import LimitsConfig
from turing.schedules import ScheduleTable

CONFIG_NAME = "turing.toml"
DEFAULT_DATABASE = "sqlite:///turing.db"


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "turing"
    database: str = DEFAULT_DATABASE
    workflows: list[str] = Field(default_factory=list)


class ActorTable(BaseModel):
    """`[actors.NAME]`: a model with its settings. `spec = "provider:model"` or both fields."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = None
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    timeout: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    price_input: float = Field(default=0.0, ge=0, description="per million input tokens")
    price_output: float = Field(default=0.0, ge=0, description="per million output tokens")
    max_concurrency: int | None = Field(default=None, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    structured: Literal["auto", "json_schema", "json_object_schema", "json_object", "prompt"] = (
        "auto"
    )
    num_ctx: int | None = Field(default=None, gt=0)
    keep_alive: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="merged into OpenAI-compatible request bodies (vLLM guided decoding, "
        "llama.cpp grammar ...)",
    )
    context_tokens: int | None = Field(
        default=None,
        gt=0,
        description="the model's context window: a longer prompt (estimated, plus max_tokens) "
        "fails or is warned of (on_overflow); Ollama gets it as num_ctx",
    )
    on_overflow: Literal["fail", "warn"] = "fail"
    concurrency: Literal["fixed", "adaptive"] = Field(
        default="fixed",
        description='"adaptive": find how many calls the host takes (AIMD per base URL, '
        "shared by the actors calling it), max_concurrency the ceiling (default 64)",
    )
    batch: Literal["off", "auto", "on"] = Field(
        default="off",
        description='provider batches (OpenAI, Anthropic) at the batch rate: "on" submits '
        'what is pending at each poll, "auto" once batch_min_tasks are pending or the '
        "oldest waited batch_max_wait",
    )
    batch_min_tasks: int = Field(default=100, ge=1)
    batch_max_wait: float = Field(default=3600.0, ge=0, description='seconds or "1h"')
    batch_max_tasks: int = Field(default=10_000, ge=1, le=50_000)
    batch_poll: float = Field(default=60.0, gt=0, description='seconds or "1m"')
    batch_completion_window: Literal["24h"] = "24h"
    batch_reask: Literal["batch", "sync"] = "batch"
    batch_reask_deadline: float | None = Field(
        default=None, ge=0, description="after this long in batches, re-asks go synchronous"
    )
    batch_price_factor: float = Field(default=0.5, gt=0, le=1)

    @field_validator("batch_max_wait", "batch_poll", "batch_reask_deadline", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """`"90s"`, `"15m"`, `"2h"` as seconds; numbers are seconds already."""
        if isinstance(value, str):
            from turing.stats import parse_duration

            return parse_duration(value)
        return value


class ProviderTable(BaseModel):
    """`[providers.NAME]`: defaults for every actor of that provider (where it listens, the key)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    api_key_env: str | None = None
    models_resident: int | None = Field(
        default=None, ge=0, description="models the host holds at once (one small GPU: 1)"
    )
    host_concurrency: int | None = Field(
        default=None, ge=1, description="calls the host serves at once"
    )
    max_wait_s: float | Literal["off"] | None = Field(
        default=None,
        description="starvation bound of the host's scheduler in seconds (default 300; "
        '"off": pure throughput)',
    )
    circuit_failures: int = Field(
        default=DEFAULT_THRESHOLD,
        ge=1,
        description="consecutive connection failures that open the host's circuit breaker",
    )
    circuit_cooldown_s: float = Field(
        default=DEFAULT_COOLDOWN_S,
        ge=0,
        description="seconds an open circuit waits before one probe call goes to the host",
    )
    shared_host: bool = Field(
        default=False,
        description="several processes share this host: agree on its models through the "
        "database (needs models_resident >= 1)",
    )

    @field_validator("max_wait_s")
    @classmethod
    def _check_max_wait(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float | int) and value < 0:
            raise ValueError('must be >= 0 seconds, or "off"')
        return value

    @model_validator(mode="after")
    def _wait_needs_a_scheduler(self) -> ProviderTable:
        if self.max_wait_s is not None and not self.schedules_host:
            raise ValueError(
                "max_wait_s: the host has no scheduler to bound; "
                "set models_resident or host_concurrency too"
            )
        if self.shared_host and not self.models_resident:
            raise ValueError("shared_host: set models_resident (>= 1) too")
        return self

    @property
    def schedules_host(self) -> bool:
        """Whether calls to this host go through a `HostScheduler`."""
        return self.models_resident is not None or self.host_concurrency is not None

    def scheduler_wait(self) -> float | None:
        """`max_wait_s` for the scheduler: the default when unset, None when "off"."""
        if self.max_wait_s is None:
            return DEFAULT_MAX_WAIT_S
        return None if self.max_wait_s == "off" else float(self.max_wait_s)


class Limits(LimitsConfig):
    """`[limits]`: spending bounds per run (one task) and per batch (one `turing run`), plus
    the shared `[limits.concurrency]` and `[limits.rate]` tables (see `turing.limits`)."""

    model_config = ConfigDict(extra="forbid")

    run_tokens: int | None = Field(default=None, gt=0)
    run_cost: float | None = Field(default=None, gt=0)
    batch_tokens: int | None = Field(default=None, gt=0)
    batch_cost: float | None = Field(default=None, gt=0)


class Observability(BaseModel):
    """`[observability]`: traces go to the application's OpenTelemetry provider when the
    API is installed ("auto"); `capture_content` puts prompts and answers on the spans
    (None: as `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` says, else off)."""

    model_config = ConfigDict(extra="forbid")

    tracing: bool | Literal["auto"] = "auto"
    capture_content: bool | None = None


class Config(BaseModel):
    """Validated project configuration; `root` is the folder relative paths resolve against."""

    model_config = ConfigDict(extra="forbid")

    project: ProjectSettings = Field(default_factory=ProjectSettings)
    actors: dict[str, str | ActorTable] = Field(default_factory=dict)
    providers: dict[str, ProviderTable] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    schedules: dict[str, ScheduleTable] = Field(default_factory=dict)
    observability: Observability = Field(default_factory=Observability)
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
    providers = data.setdefault("providers", {})
    for key, value in env.items():
        if (
            key.startswith("TURING_ACTOR_")
            and len(key) > len("TURING_ACTOR_")
            and isinstance(actors, dict)
        ):
            actors[key[len("TURING_ACTOR_") :].lower()] = value
        elif (
            key.startswith("TURING_PROVIDER_")
            and key.endswith("_URL")
            and isinstance(providers, dict)
        ):
            name = key[len("TURING_PROVIDER_") : -len("_URL")].lower()
            table = providers.setdefault(name, {})
            if isinstance(table, dict):
                table["base_url"] = value
