"""Simulator settings: latency per model, residency (a small GPU), faults, named profiles."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from turing.errors import ConfigError

# Every fault kind, in the order their rates are laid end to end on [0, 1).
FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_429",
    "hang",
    "malformed_json",
    "fenced_prose",
    "bare_array",
    "one_element_array",
    "json_string",
    "wrong_enum",
    "missing_field",
    "extra_fields",
    "empty",
    "ungrounded",
)
# Faults that never reach a model's answer: the HTTP layer answers (or stalls) instead.
TRANSPORT_FAULTS = frozenset({"http_500", "http_429", "hang"})
# Faults that deterministic repair is meant to fix without asking the model again.
SHAPE_FAULTS = frozenset(
    {"malformed_json", "fenced_prose", "bare_array", "one_element_array", "json_string"}
)

# Faults no contract can see: a schema-valid answer with invented content (a quote the
# prompt does not contain, a name nobody asked for). Only checks catch them; the
# shape-and-transport profiles (demo, chaos) leave them out, the quality benchmark turns
# them on.
QUALITY_FAULTS = frozenset({"ungrounded"})

# Structured-output modes a server may refuse on `/v1/chat/completions` (`refuse_structured`):
# response_format json_schema, json_object with a `schema`, plain json_object.
STRUCTURED_KINDS: tuple[str, ...] = ("json_schema", "json_object_schema", "json_object")

# Real servers' answers to a response_format they do not take, as `SimConfig` overrides
# (`SimConfig.server_type(name)`): llama-cpp-python validates the body with pydantic and
# answers 500; a server without json_schema answers 400; one that takes JSON mode but no
# `schema` in it 422; some take no response_format at all.
SERVER_TYPES: dict[str, dict[str, Any]] = {
    "openai": {},  # and vLLM, LM Studio, llama.cpp's llama-server: json_schema is taken
    "llama-cpp-python": {"refuse_structured": ("json_schema",), "refusal_status": 500},
    "no-json-schema": {"refuse_structured": ("json_schema",), "refusal_status": 400},
    "json-mode-only": {
        "refuse_structured": ("json_schema", "json_object_schema"),
        "refusal_status": 422,
    },
    "no-format": {"refuse_structured": STRUCTURED_KINDS, "refusal_status": 400},
}

DEFAULT_MODELS: tuple[str, ...] = (
    "qwen2.5:7b",
    "qwen2.5:3b",
    "llama3.1:8b",
    "llama3.2:3b",
    "gpt-4o-mini",
    "gpt-4o",
)


@dataclass(frozen=True)
class ModelLatency:
    """How fast one model answers: time to first token, generation speed, +/- jitter.

    `tokens_per_s <= 0` means generation takes no time; `jitter` is a fraction (0.2 means
    each duration is drawn from [0.8x, 1.2x], deterministically per request).
    """

    ttft_s: float = 0.1
    tokens_per_s: float = 200.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.ttft_s < 0 or not 0 <= self.jitter < 1:
            raise ConfigError(f"bad model latency {self}: ttft_s >= 0 and 0 <= jitter < 1")


@dataclass(frozen=True)
class SimConfig:
    """Everything that shapes the simulator's behaviour; same config + seed => same answers.

    * `models`: latency per model name; `default_latency` for any other model.
    * `known_models`: what `/api/tags` and `/v1/models` list (plus the keys of `models`);
      other names get the provider's real "model not found" error.
    * `models_resident`: how many models fit at once (0 = no limit). A request for a model
      that is not loaded waits until one without in-flight requests can be evicted (least
      recently used first), then pays `swap_s`. Requests are admitted first come, first
      served, so interleaving two models on `models_resident=1` swaps on every change.
    * `time_scale`: multiplies every modelled sleep (latency, swap); 0 means no sleeping.
      Reported durations (Ollama's `*_duration`) are the modelled, unscaled ones.
    * `faults`: rate per kind (see `FAULT_KINDS`), summing to at most 1. A fault that does
      not apply to the request (say `bare_array` for a schema without an array property)
      becomes no fault; only applied faults are counted. `ungrounded` (see
      `QUALITY_FAULTS`) keeps the answer schema-valid but invents one value: a string
      field's quoted part (or the whole of a short string, such as a name) becomes text
      that does not occur in the prompt.
    * `hang_s`: how long a `hang` stalls, in real seconds (not scaled: it is meant to
      outlast the client's timeout). `retry_after_s`: the 429's Retry-After.
    * `api_key`: when set, OpenAI-protocol requests must carry `Authorization: Bearer <key>`.
    * `refuse_structured`: the `response_format` kinds (see `STRUCTURED_KINDS`) that the
      OpenAI endpoint refuses, with `refusal_status`: 500 answers as llama-cpp-python does
      (a pydantic validation message, "Input should be 'text' or 'json_object'"), a 4xx as
      an OpenAI-style invalid_request_error naming `response_format`. `SERVER_TYPES` has
      the usual combinations.
    * `bad_plans`: the first N answers to Turing's planner for each goal are invalid plans
      (a forward reference, a dangling reference), to exercise re-asks.
    * `model_faults`: fault rates for one model (by its listed name), replacing `faults`
      for that model: a small model that breaks the contract 30% of the time beside a large
      one at 1% (the cascade benchmark).
    * `capacity`: a hidden capacity (0: none). A request arriving while `capacity` requests
      are in flight is answered 429 at once (with Retry-After), as a provider's overload
      protection does. `knee`: past `knee` requests in flight (0: none), every admitted
      request is slower in proportion (latency x in_flight / knee), as a saturated server
      shares its compute: throughput stops growing at the knee, then requests fail past
      `capacity`. Both count the requests in flight on this simulator, every model together.
    * `batch_turnaround_s`: how long (on the engine's clock) a provider batch (OpenAI
      `/v1/batches`, Anthropic `/v1/messages/batches`) takes to end; before, it is in
      progress. `batch_expire_fraction`: batches expire at their turnaround with only this
      fraction of their requests answered (None: they complete). See `turing.sim.batches`.
    """

    seed: int = 0
    name: str = "custom"
    models: dict[str, ModelLatency] = field(default_factory=dict)
    default_latency: ModelLatency = field(default_factory=ModelLatency)
    known_models: tuple[str, ...] = DEFAULT_MODELS
    swap_s: float = 0.5
    models_resident: int = 2
    time_scale: float = 1.0
    faults: dict[str, float] = field(default_factory=dict)
    hang_s: float = 60.0
    retry_after_s: float = 1.0
    api_key: str | None = None
    bad_plans: int = 0
    refuse_structured: tuple[str, ...] = ()
    refusal_status: int = 400
    model_faults: dict[str, dict[str, float]] = field(default_factory=dict)
    capacity: int = 0
    knee: int = 0
    batch_turnaround_s: float = 0.0
    batch_expire_fraction: float | None = None

    def __post_init__(self) -> None:
        odd = sorted(set(self.refuse_structured) - set(STRUCTURED_KINDS))
        if odd:
            raise ConfigError(
                f"unknown structured kind(s) {', '.join(odd)} in refuse_structured "
                f"(known: {', '.join(STRUCTURED_KINDS)})"
            )
        if not 400 <= self.refusal_status <= 599:
            raise ConfigError("refusal_status must be an HTTP error status (400-599)")
        for where, rates in [("faults", self.faults)] + [
            (f"model_faults[{m!r}]", r) for m, r in self.model_faults.items()
        ]:
            _check_rates(where, rates)
        if self.capacity < 0 or self.knee < 0:
            raise ConfigError("capacity and knee must not be negative (0: none)")
        if self.batch_turnaround_s < 0:
            raise ConfigError("batch_turnaround_s must not be negative")
        if self.batch_expire_fraction is not None and not 0 <= self.batch_expire_fraction <= 1:
            raise ConfigError("batch_expire_fraction must be between 0 and 1 (or None)")
        if self.bad_plans < 0:
            raise ConfigError("bad_plans must not be negative")
        if self.time_scale < 0 or self.swap_s < 0 or self.hang_s < 0 or self.models_resident < 0:
            raise ConfigError("time_scale, swap_s, hang_s and models_resident must not be negative")

    @property
    def fault_rate(self) -> float:
        """The nominal share of faulty responses (before inapplicable faults fall away)."""
        return sum(self.faults.values())

    def faults_for(self, model: str) -> dict[str, float]:
        """The fault rates of `model` (its listed name): its own, else `faults`."""
        return self.model_faults.get(model, self.faults)

    def slowdown(self, in_flight: int) -> float:
        """How much slower a request admitted with `in_flight` requests in flight (itself
        included) is than one alone: 1 up to the knee, then in proportion."""
        if self.knee <= 0 or in_flight <= self.knee:
            return 1.0
        return in_flight / self.knee

    def latency(self, model: str) -> ModelLatency:
        return self.models.get(model, self.default_latency)

    def listed_models(self) -> list[str]:
        """Known models in a stable order: `known_models`, then other keys of `models`."""
        out = list(dict.fromkeys(self.known_models))
        out += [m for m in self.models if m not in out]
        return out

    def with_(self, **changes: Any) -> SimConfig:
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown simulator setting(s): {', '.join(unknown)}")
        return replace(self, **changes)

    def server_type(self, name: str) -> SimConfig:
        """This config answering response_formats as the named server type (`SERVER_TYPES`)."""
        try:
            return self.with_(**SERVER_TYPES[name])
        except KeyError:
            known = ", ".join(SERVER_TYPES)
            raise ConfigError(f"unknown server type {name!r} (known: {known})") from None

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> SimConfig:
        """A named profile (see `PROFILES`), with any field overridden."""
        try:
            base = PROFILES[name]
        except KeyError:
            known = ", ".join(PROFILES)
            raise ConfigError(f"unknown simulator profile {name!r} (known: {known})") from None
        return base.with_(**overrides)


def _check_rates(where: str, rates: dict[str, float]) -> None:
    unknown = sorted(set(rates) - set(FAULT_KINDS))
    if unknown:
        raise ConfigError(
            f"unknown fault kind(s) {', '.join(unknown)} in {where} "
            f"(known: {', '.join(FAULT_KINDS)})"
        )
    if any(rate < 0 for rate in rates.values()) or sum(rates.values()) > 1 + 1e-9:
        raise ConfigError(f"{where}: fault rates must be >= 0 and sum to <= 1, got {rates}")


PROFILES: dict[str, SimConfig] = {
    # No latency and no faults: unit tests.
    "fast": SimConfig(
        name="fast",
        default_latency=ModelLatency(ttft_s=0.05, tokens_per_s=300.0, jitter=0.1),
        swap_s=0.5,
        models_resident=0,
        time_scale=0.0,
    ),
    # A small, realistic local GPU without faults.
    "default": SimConfig(
        name="default",
        default_latency=ModelLatency(ttft_s=0.08, tokens_per_s=250.0, jitter=0.2),
        swap_s=0.5,
        models_resident=2,
    ),
    # Quick, and about 15% faulty: mostly shapes that deterministic repair fixes.
    "demo": SimConfig(
        name="demo",
        default_latency=ModelLatency(ttft_s=0.02, tokens_per_s=2000.0, jitter=0.2),
        swap_s=0.2,
        models_resident=2,
        retry_after_s=1.0,
        faults={
            "fenced_prose": 0.03,
            "malformed_json": 0.03,
            "bare_array": 0.02,
            "one_element_array": 0.01,
            "json_string": 0.015,
            "extra_fields": 0.015,
            "http_500": 0.01,
            "http_429": 0.01,
            "wrong_enum": 0.01,
            "missing_field": 0.01,
        },
    ),
    # At least 30% faulty across every kind: the salvage benchmark.
    "chaos": SimConfig(
        name="chaos",
        default_latency=ModelLatency(ttft_s=0.005, tokens_per_s=5000.0, jitter=0.5),
        swap_s=0.05,
        models_resident=2,
        retry_after_s=1.0,
        faults={
            "http_500": 0.04,
            "http_429": 0.03,
            "hang": 0.01,
            "malformed_json": 0.05,
            "fenced_prose": 0.05,
            "bare_array": 0.04,
            "one_element_array": 0.03,
            "json_string": 0.04,
            "wrong_enum": 0.03,
            "missing_field": 0.03,
            "extra_fields": 0.03,
            "empty": 0.02,
        },
    ),
    # One resident model and a 2 s swap: batching by model versus interleaving.
    "gpu": SimConfig(
        name="gpu",
        default_latency=ModelLatency(ttft_s=0.05, tokens_per_s=300.0, jitter=0.1),
        swap_s=2.0,
        models_resident=1,
    ),
}
