"""Adaptive concurrency: find a host's capacity without being told it.

The simulator (its own process) hides a capacity: a request arriving while C=16 are in
flight is answered 429 (Retry-After 50 ms), and past a knee of K=8 in flight every request
is slower in proportion (a saturated server sharing its compute), so throughput is flat
from K to C and the best any concurrency can do is K / latency (100 ms modelled, with
10% jitter: 80 calls/s). Load: 64 closed loops of calls through one `ManagedActor` (the
Ollama provider; up to 8 retries on 429 with the server's Retry-After).

1. Fixed concurrency (`max_concurrency` = c, no adaptation) for each c in the sweep:
   successful calls/s and the share of requests answered 429, after a warm-up.
2. Adaptive (`concurrency = "adaptive"`, ceiling 64; C and K not given): the same
   numbers after a warm-up of WARMUP_S, and where the limit settled.

Target: adaptive within 10% of the best fixed throughput, with under 1% of requests
answered 429 once converged. Takes about a minute.

Run: `.venv/bin/python benchmarks/adaptive.py [--scale S]` (S multiplies every modelled
duration and window; default 1).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from batching import SimProcess
from turing import Message, ModelRequest
from turing.actors.adaptive import AdaptiveLimit
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create

SCALE = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
CAPACITY, KNEE, LATENCY_S = 16, 8, 0.1
LOOPS, CEILING = 64, 64
SWEEP = (2, 4, 8, 12, 16, 24, 32)
FIXED_WARMUP_S, FIXED_MEASURE_S = 1.0 * SCALE, 3.0 * SCALE
WARMUP_S, MEASURE_S = 6.0 * SCALE, 10.0 * SCALE
MODEL = "qwen2.5:7b"
SCHEMA = {
    "type": "object",
    "properties": {"item_id": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["item_id", "label"],
}


@dataclass
class Window:
    label: str
    ok: int
    seconds: float
    requests: int
    refused: int  # answered 429 (over capacity)
    limit: str = ""
    warmup_refused: int = 0  # 429s while converging, before the window

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def refused_share(self) -> float:
        return self.refused / max(1, self.requests)


async def drive(
    sim: SimProcess,
    actor: ManagedActor,
    label: str,
    window: tuple[float, float],
    *,
    limit: AdaptiveLimit | None = None,
) -> Window:
    """LOOPS closed loops of calls; counts what succeeded in `window` = (warm-up, measured
    seconds): the calls answered in the measured part."""
    warmup, measure = window
    done = [0]
    stop = asyncio.Event()
    limits: list[int] = []

    async def loop(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            text = f"Label this item.\nitem_id: {n * 100_000 + i}\ntext: item {n}-{i}"
            request = ModelRequest(
                messages=(Message("user", text),), schema=SCHEMA, timeout=30, from_cache=False
            )
            try:
                await actor.complete(request)
                done[0] += 1
            except Exception:  # gave up after its retries: not a success
                pass

    async def sample_limit() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.1 * SCALE)
            if limit is not None:
                limits.append(limit.limit)

    first = await asyncio.to_thread(sim.stats)
    tasks = [asyncio.create_task(loop(n)) for n in range(LOOPS)]
    sampler = asyncio.create_task(sample_limit())
    await asyncio.sleep(warmup)
    before = await asyncio.to_thread(sim.stats)
    ok, started = done[0], time.perf_counter()
    limits.clear()
    await asyncio.sleep(measure)
    seconds = time.perf_counter() - started
    ok = done[0] - ok
    after = await asyncio.to_thread(sim.stats)
    stop.set()
    await asyncio.gather(*tasks, sampler)
    settled = ""
    if limits:
        settled = f"limit {min(limits)}-{max(limits)}, mean {sum(limits) / len(limits):.1f}"
    return Window(
        label,
        ok,
        seconds,
        after["calls"] - before["calls"],
        after["over_capacity"] - before["over_capacity"],
        settled,
        before["over_capacity"] - first["over_capacity"],
    )


def actor(sim: SimProcess, adaptive: AdaptiveLimit | None = None, **settings: Any) -> ManagedActor:
    s = ActorSettings("ollama", MODEL, base_url=sim.url, max_retries=8, **settings)
    return ManagedActor(create(s), s, seed=1, adaptive=adaptive)


def main() -> None:
    spec = {
        "default_latency": [LATENCY_S * SCALE, 0.0, 0.1],
        "models_resident": 0,
        "capacity": CAPACITY,
        "knee": KNEE,
        "retry_after_s": 0.05 * SCALE,
        "seed": 1,
    }
    rows: list[Window] = []
    with SimProcess(spec) as sim:
        for c in SWEEP:
            managed = actor(sim, max_concurrency=c)
            rows.append(
                asyncio.run(drive(sim, managed, f"fixed {c}", (FIXED_WARMUP_S, FIXED_MEASURE_S)))
            )
        limit = AdaptiveLimit(CEILING, name=sim.url)
        adaptive = actor(sim, limit, max_concurrency=CEILING, concurrency="adaptive")
        result = asyncio.run(drive(sim, adaptive, "adaptive", (WARMUP_S, MEASURE_S), limit=limit))
    best = max(rows, key=lambda r: r.rate)
    print(
        f"adaptive: hidden capacity {CAPACITY} in flight (429 above), latency knee {KNEE}, "
        f"{LATENCY_S * SCALE * 1000:.0f} ms modelled; {LOOPS} closed loops, Ollama provider "
        f"-> simulator (own process); ideal {KNEE / (LATENCY_S * SCALE):.0f} calls/s"
    )
    print(f"  {'run':10} {'calls/s':>8} {'requests':>8} {'429s':>6} {'429 share':>9}")
    for r in [*rows, result]:
        print(
            f"  {r.label:10} {r.rate:8.1f} {r.requests:8} {r.refused:6} {r.refused_share:9.2%}"
            + (f"  ({r.limit})" if r.limit else "")
        )
    share = result.rate / best.rate
    print(
        f"  adaptive reaches {share:.1%} of the best fixed ({best.label}: {best.rate:.1f} "
        f"calls/s) with {result.refused_share:.2%} answered 429 after a {WARMUP_S:g} s warm-up "
        f"({result.warmup_refused} 429s during it); {limit.decreases} decreases in all"
    )
    met = share >= 0.9 and result.refused_share < 0.01
    print(
        "  target (>= 90% of the best fixed, < 1% 429 once converged): "
        + ("met" if met else "NOT met")
    )


if __name__ == "__main__":
    main()
