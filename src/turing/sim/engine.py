"""The protocol-neutral core: decide, for one request, the answer, the fault and the timing.

Determinism: every generation request has a key (a hash of model, messages, schema and
output mode). The answer is drawn from a generator seeded with (seed, key, request seed),
so the same request always gets the same correct answer. The fault and the timing are
drawn from (seed, key, n), where n counts earlier requests with the same key: a retried
identical request can get another fault decision, yet a replayed sequence of requests
gets the same decisions in the same order whatever the concurrency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from turing._json import digest
from turing.sim import faults
from turing.sim.config import FAULT_KINDS, TRANSPORT_FAULTS, SimConfig
from turing.sim.planning import PlanningResponder
from turing.sim.residency import Residency
from turing.sim.responders import Responder, SchemaResponder, prompt_text

log = logging.getLogger("turing.sim")

Alive = Callable[[], Awaitable[bool]]
_ASKED = ("system", "user")  # what an answer may quote from


def estimate_tokens(text: str) -> int:
    """Roughly four characters a token, like the real tokenizers on English and JSON."""
    return max(1, (len(text) + 3) // 4) if text else 0


def normalize_model(name: str) -> str:
    """Ollama's naming: `llama3` is `llama3:latest`."""
    return name if ":" in name else f"{name}:latest"


@dataclass
class Call:
    """One generation request, protocol-neutral."""

    protocol: str  # "ollama" | "openai"
    endpoint: str
    model: str
    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None = None
    json_mode: bool = False
    # no structured output asked for (OpenAI's endpoint without response_format): a schema
    # spelled out in the prompt is followed, and the JSON comes in a ```json fence, as an
    # instruction-following model without constrained decoding tends to answer
    free_text: bool = False
    seed: int | None = None
    max_tokens: int | None = None
    unload_after: bool = False


@dataclass
class Plan:
    """What the simulator will do for one call (modelled seconds are unscaled)."""

    call: Call
    key: str
    fault: str | None
    content: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    done_reason: str = "stop"
    ttft_s: float = 0.0
    gen_s: float = 0.0
    load_s: float = 0.0
    error: str | None = None  # a responder crash: answered as a 500


@dataclass
class Stats:
    calls: int = 0
    calls_by_model: Counter[str] = field(default_factory=Counter)
    calls_by_endpoint: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    faults_not_applicable: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    over_capacity: int = 0  # 429s answered because `capacity` requests were in flight


class Engine:
    """`clock` and `sleep` are the time the modelled latencies, swaps and hangs pass on
    (default: the event loop's clock and `asyncio.sleep`); tests pass a clock they move
    from their sleep, so nothing depends on how fast the machine is."""

    def __init__(
        self,
        config: SimConfig,
        responder: Responder | None = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        # Planning requests get plans (see turing.sim.planning); the rest the given responder.
        self.responder: Responder = PlanningResponder(
            responder or SchemaResponder(), config.bad_plans
        )
        self.residency = Residency(config.models_resident)
        self.stats = Stats()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.closing = False
        # Ollama's naming (`llama3` is `llama3:latest`) -> the name as listed.
        self._known = {normalize_model(m): m for m in config.listed_models()}

    # -- lookups -------------------------------------------------------------------------

    def knows(self, model: str) -> bool:
        return normalize_model(model) in self._known

    def canonical(self, model: str) -> str:
        """The listed name of a known model (`llama3` -> `llama3` or `llama3:latest`)."""
        return self._known.get(normalize_model(model), model)

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.stats.errors[kind] += 1

    # -- planning ------------------------------------------------------------------------

    def plan(self, call: Call) -> Plan:
        """Draw the answer, the fault and the timing for one call (counts it)."""
        cfg = self.config
        schema = call.schema
        if schema is None and call.json_mode:
            schema = schema_in_prompt(call.messages) or {"type": "object"}
        elif schema is None and call.free_text:
            schema = schema_in_prompt(call.messages)
        key = digest(
            {
                "model": normalize_model(call.model),
                "messages": call.messages,
                "schema": schema,
                "json": call.json_mode,
            }
        )
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
            self.stats.calls += 1
            self.stats.calls_by_model[self.canonical(call.model)] += 1
            self.stats.calls_by_endpoint[call.endpoint] += 1
            full = 0 < cfg.capacity <= self.stats.in_flight  # the hidden capacity is used up
            self.stats.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            slowdown = cfg.slowdown(self.stats.in_flight)
            if full:
                self.stats.over_capacity += 1
        fault_rng = random.Random(f"{cfg.seed}:fault:{key}:{n}")
        timing_rng = random.Random(f"{cfg.seed}:timing:{key}:{n}")
        answer_rng = random.Random(f"{cfg.seed}:answer:{key}:{call.seed}")
        kind = faults.choose(cfg, fault_rng, self.canonical(call.model))
        if full:
            kind = "http_429"  # not counted as an injected fault: see `over_capacity`
        plan = Plan(call=call, key=key, fault=kind)
        plan.prompt_tokens = sum(
            estimate_tokens(prompt_text([m], ("system", "user", "assistant", "tool")))
            for m in call.messages
        )
        if kind in ("http_500", "http_429"):
            if not full:
                self._count_fault(kind)
            return plan
        try:
            value = self.responder.respond(call.model, call.messages, schema, answer_rng)
        except Exception as exc:  # a broken responder: answer 500, keep serving
            log.exception("responder failed")
            self.count_error("responder")
            plan.fault = None
            plan.error = f"responder failed: {type(exc).__name__}: {exc}"
            return plan
        content = value if schema is None and isinstance(value, str) else faults.dumps(value)
        if kind is not None and kind not in TRANSPORT_FAULTS:
            faulty = faults.apply(
                kind, value, schema, fault_rng, prompt=prompt_text(call.messages, _ASKED)
            )
            if faulty is None:
                with self._lock:
                    self.stats.faults_not_applicable += 1
                kind = plan.fault = None
            else:
                content = faulty
        if kind is not None:
            self._count_fault(kind)
        elif call.free_text and schema is not None:
            content = f"```json\n{content}\n```"
        plan.completion_tokens = estimate_tokens(content)
        if call.max_tokens is not None and 0 <= call.max_tokens < plan.completion_tokens:
            content = content[: call.max_tokens * 4]
            plan.completion_tokens = call.max_tokens
            plan.done_reason = "length"
        plan.content = content
        lat = cfg.latency(self.canonical(call.model))
        plan.ttft_s = lat.ttft_s * _jittered(lat.jitter, timing_rng) * slowdown
        if lat.tokens_per_s > 0:
            plan.gen_s = (
                plan.completion_tokens
                / lat.tokens_per_s
                * _jittered(lat.jitter, timing_rng)
                * slowdown
            )
        with self._lock:
            self.stats.prompt_tokens += plan.prompt_tokens
            self.stats.completion_tokens += plan.completion_tokens
        return plan

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self.stats.faults[kind] += 1

    def finish(self, plan: Plan) -> None:
        with self._lock:
            self.stats.in_flight -= 1

    # -- time and residency -----------------------------------------------------------

    async def pause(self, seconds: float, alive: Alive | None = None) -> bool:
        """Sleep `seconds` (of `clock`); False when the client left or the server stops."""
        if seconds <= 0:
            return True
        clock = self.clock or asyncio.get_running_loop().time
        deadline = clock() + seconds
        while True:
            left = deadline - clock()
            if left <= 0:
                return True
            if self.closing:
                return False
            await self.sleep(min(left, 0.05))
            if alive is not None and not await alive():
                return False

    async def scaled(self, seconds: float, alive: Alive | None = None) -> bool:
        return await self.pause(seconds * self.config.time_scale, alive)

    async def load(self, plan: Plan) -> None:
        """Admit the call to its model (waiting for a slot, paying a swap if needed).

        On success the caller must `unload(plan)` when done; on failure nothing is held.
        """
        model = self.canonical(plan.call.model)
        slot, must_load = await self.residency.acquire(model)
        try:
            if must_load:
                plan.load_s = self.config.swap_s
                try:
                    await self.scaled(self.config.swap_s)
                finally:
                    slot.ready.set()
            else:
                await slot.ready.wait()
        except BaseException:
            self.residency.release(model)
            raise

    def unload(self, plan: Plan) -> None:
        self.residency.release(self.canonical(plan.call.model), unload=plan.call.unload_after)

    # -- stats -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self.stats
            return {
                "profile": self.config.name,
                "seed": self.config.seed,
                "calls": s.calls,
                "calls_by_model": dict(sorted(s.calls_by_model.items())),
                "calls_by_endpoint": dict(sorted(s.calls_by_endpoint.items())),
                "swaps": self.residency.swaps,
                "evictions": self.residency.evictions,
                "unloads": self.residency.unloads,
                "resident": self.residency.resident(),
                "models_resident": self.config.models_resident,
                "faults": {kind: s.faults.get(kind, 0) for kind in FAULT_KINDS},
                "faulty": sum(s.faults.values()),
                "faults_not_applicable": s.faults_not_applicable,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "errors": dict(sorted(s.errors.items())),
                "in_flight": s.in_flight,
                "peak_in_flight": s.peak_in_flight,
                "over_capacity": s.over_capacity,
            }

    def reset(self) -> None:
        """Zero the counters and forget seen requests; idle models are unloaded.

        Call on the server's event loop (the residency state lives there)."""
        self.residency.reset()
        with self._lock:
            in_flight = self.stats.in_flight
            self.stats = Stats(in_flight=in_flight)
            self._seen.clear()


def _jittered(jitter: float, rng: random.Random) -> float:
    return 1.0 + jitter * (2.0 * rng.random() - 1.0)


def schema_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A JSON Schema quoted in the messages (json_object mode often puts it there)."""
    text = prompt_text(messages, ("system", "user"))
    decoder = json.JSONDecoder()
    start = text.find("{")
    best: dict[str, Any] | None = None
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        is_schema = isinstance(value, dict) and (
            "properties" in value or value.get("type") == "object"
        )
        if is_schema and (best is None or len(json.dumps(value)) > len(json.dumps(best))):
            best = value
        start = text.find("{", end)
    return best
