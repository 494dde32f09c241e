"""HostScheduler (model-affinity batching): which waiting call starts next, the starvation
bound, the concurrency and residency limits, and safety under cancellation and errors.

Scheduling is driven by events (calls arriving and ending), so the tests script the
arrivals and read the order in which calls started; time is a fake clock where it matters.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from turing import Executor, FakeModel, LLMStep, Message, ModelRequest, Workflow
from turing.actors.affinity import AffinityActor, HostScheduler, HostSchedulers, host_key
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


async def scripted(
    scheduler: HostScheduler,
    arrivals: list[str],
    *,
    first: str | None = None,
    body: Callable[[str], Awaitable[None]] | None = None,
) -> list[str]:
    """Hold one call for `first` (if given), queue one call per entry of `arrivals` (in that
    order), then let everything run; return the order in which the calls started."""
    order: list[str] = []

    async def call(tag: str) -> None:
        model = tag.rstrip("0123456789")
        async with scheduler.slot(model):
            order.append(tag)
            if body is not None:
                await body(model)
            await asyncio.sleep(0)

    if first is not None:
        await scheduler.acquire(first)
    tasks = [asyncio.create_task(call(tag)) for tag in arrivals]
    await settle()
    if first is not None:
        scheduler.release(first)
    await asyncio.gather(*tasks)
    return order


def switches_in(order: list[str]) -> int:
    models = [tag.rstrip("0123456789") for tag in order]
    return sum(1 for i, m in enumerate(models) if i == 0 or m != models[i - 1])


# ----------------------------------------------------------------------------- ordering
def test_two_step_items_go_stage_wise() -> None:
    """Every item: a call on A, then one on B; all in flight: all of A, then all of B."""
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order: list[str] = []

    async def item(i: int) -> None:
        for model in ("A", "B"):
            async with scheduler.slot(model):
                order.append(f"{model}{i}")
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(item(i) for i in range(6)))

    run(main())
    assert order == [f"A{i}" for i in range(6)] + [f"B{i}" for i in range(6)]
    assert scheduler.switches == 2 and scheduler.evictions == 1
    assert scheduler.in_progress == 0 and scheduler.waiting == 0


def test_interleaved_arrivals_are_grouped_by_model() -> None:
    """First come first served would swap on every call; the scheduler swaps twice."""
    arrivals = [f"{m}{i}" for i in range(5) for m in ("B", "A")]
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order = run(scripted(scheduler, arrivals, first="A"))
    assert order == [f"A{i}" for i in range(5)] + [f"B{i}" for i in range(5)]
    assert scheduler.switches == 2  # A (the first call), then B

    fifo = HostScheduler(models_resident=0, max_concurrency=1)
    assert run(scripted(fifo, arrivals, first="A")) == arrivals
    assert switches_in(arrivals) == 10 and fifo.switches == 0  # no residency: nothing counted


def test_resident_model_first_even_when_another_has_more_waiting() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order = run(scripted(scheduler, ["B1", "B2", "B3", "A1"], first="A"))
    assert order == ["A1", "B1", "B2", "B3"]


def test_switch_goes_to_the_model_with_most_waiting_calls() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order = run(scripted(scheduler, ["B1", "C1", "C2", "D1", "C3", "D2"], first="A"))
    assert order == ["C1", "C2", "C3", "D1", "D2", "B1"]
    assert scheduler.switches == 4  # A, C, D, B


def test_ties_go_to_the_oldest_call_and_fifo_within_a_model() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order = run(scripted(scheduler, ["C1", "B1", "B2", "C2"], first="A"))
    assert order == ["C1", "C2", "B1", "B2"]


def test_two_resident_models_are_served_without_swaps() -> None:
    scheduler = HostScheduler(models_resident=2, max_concurrency=1, resident=["A", "B"])
    order = run(scripted(scheduler, ["B1", "A1", "C1", "B2", "A2"]))
    assert order[:4] == ["B1", "A1", "B2", "A2"] and order[4] == "C1"
    assert scheduler.switches == 1 and scheduler.evictions == 1  # C evicts the LRU model
    assert scheduler.resident() == ["A", "C"]


def test_resident_belief_at_start_saves_the_first_load() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1, resident=["B"])
    run(scripted(scheduler, ["B1", "B2"]))
    assert scheduler.switches == 0 and scheduler.started == 2


def test_no_residency_limit_is_first_come_first_served() -> None:
    scheduler = HostScheduler(models_resident=0, max_concurrency=2)
    arrivals = ["B1", "A1", "C1", "A2", "B2"]
    assert run(scripted(scheduler, arrivals, first="A")) == arrivals
    assert scheduler.switches == 0 and scheduler.resident() == []
    assert scheduler.peak_in_progress == 2


def test_a_switch_waits_for_the_resident_model_to_drain() -> None:
    """K=1, two slots: B cannot load while A still runs; new A calls keep going meanwhile."""
    scheduler = HostScheduler(models_resident=1, max_concurrency=2, max_wait_s=None)
    events: list[str] = []

    async def main() -> None:
        gates = {tag: asyncio.Event() for tag in ("A1", "A2", "A3", "B1")}

        async def call(tag: str) -> None:
            async with scheduler.slot(tag[0]):
                events.append(f"start {tag}")
                await gates[tag].wait()
            events.append(f"end {tag}")

        tasks = [asyncio.create_task(call(t)) for t in ("A1", "A2", "B1")]
        await settle()
        assert events == ["start A1", "start A2"]
        gates["A1"].set()
        await settle()
        assert events[-1] == "end A1"  # B1 may not start: A2 still runs on the only place
        tasks.append(asyncio.create_task(call("A3")))
        await settle()
        assert events[-1] == "start A3"  # resident work first
        gates["A2"].set()
        gates["A3"].set()
        await settle()
        assert events[-1] == "start B1"
        gates["B1"].set()
        await asyncio.gather(*tasks)

    run(main())
    assert scheduler.peak_in_progress == 2 and scheduler.switches == 2


# ---------------------------------------------------------------------------- starvation
def test_a_starved_model_goes_next_then_its_queue_is_served() -> None:
    """Each call takes 1 s (fake clock); B's calls wait behind A's long queue at most 10 s."""
    clock = Clock()
    scheduler = HostScheduler(models_resident=1, max_concurrency=1, max_wait_s=10, clock=clock)

    async def one_second(model: str) -> None:
        clock.now += 1

    arrivals = [f"A{i}" for i in range(1, 31)] + ["B1", "B2"]
    order = run(scripted(scheduler, arrivals, first="A", body=one_second))
    a = [f"A{i}" for i in range(1, 31)]
    assert order == [*a[:10], "B1", "B2", *a[10:]]
    assert scheduler.switches == 3 and scheduler.forced_switches == 1


def test_a_moving_queue_is_not_starved_and_waits_stay_bounded() -> None:
    """Two long queues alternate in turns of about max_wait_s, not call by call."""
    clock = Clock()
    scheduler = HostScheduler(models_resident=1, max_concurrency=1, max_wait_s=10, clock=clock)
    starts: dict[str, list[float]] = {"A": [], "B": []}

    async def one_second(model: str) -> None:
        starts[model].append(clock.now)
        clock.now += 1

    arrivals = [f"A{i}" for i in range(40)] + [f"B{i}" for i in range(40)]
    order = run(scripted(scheduler, arrivals, first="A", body=one_second))
    runs = [len(list(group)) for _, group in itertools.groupby(t[0] for t in order)]
    assert runs == [10, *[9] * 7, 3, 4]  # turns of about max_wait_s, then what is left
    # While a model had waiting calls, it never went more than max_wait_s + one call unserved.
    for times in starts.values():
        assert max(b - a for a, b in itertools.pairwise(times)) <= 11
    assert starts["B"][0] == 10


def test_a_starved_model_drains_the_host_before_anything_else_starts() -> None:
    clock = Clock()
    scheduler = HostScheduler(models_resident=1, max_concurrency=2, max_wait_s=5, clock=clock)
    events: list[str] = []

    async def main() -> None:
        gates = {tag: asyncio.Event() for tag in ("A1", "A2", "A3", "B1")}

        async def call(tag: str) -> None:
            async with scheduler.slot(tag[0]):
                events.append(f"start {tag}")
                await gates[tag].wait()
            events.append(f"end {tag}")

        tasks = [asyncio.create_task(call(t)) for t in ("A1", "A2", "B1")]
        await settle()
        clock.now = 6  # B1 has now waited longer than max_wait_s
        tasks.append(asyncio.create_task(call("A3")))
        gates["A1"].set()
        await settle()
        assert events == ["start A1", "start A2", "end A1"]  # A3 held back: the host drains
        gates["A2"].set()
        await settle()
        assert events[-1] == "start B1"
        gates["B1"].set()
        gates["A3"].set()
        await asyncio.gather(*tasks)

    run(main())
    assert [e for e in events if e.startswith("start")] == [
        "start A1",
        "start A2",
        "start B1",
        "start A3",
    ]
    assert scheduler.forced_switches == 1


def test_without_the_bound_a_resident_model_keeps_the_host() -> None:
    clock = Clock()
    scheduler = HostScheduler(models_resident=1, max_concurrency=1, max_wait_s=None, clock=clock)

    async def one_second(model: str) -> None:
        clock.now += 1

    arrivals = [f"A{i}" for i in range(1, 31)] + ["B1"]
    order = run(scripted(scheduler, arrivals, first="A", body=one_second))
    assert order == [*arrivals[:30], "B1"] and scheduler.forced_switches == 0


# ------------------------------------------------------------------ limits under churn
@pytest.mark.parametrize("seed", range(6))
def test_limits_hold_and_nothing_leaks_under_errors_cancellations_and_timeouts(
    seed: int,
) -> None:
    rng = random.Random(seed)
    ticks = itertools.count()
    scheduler = HostScheduler(
        models_resident=2,
        max_concurrency=3,
        max_wait_s=rng.choice([None, 0.0, 5.0, 40.0]),
        clock=lambda: next(ticks) * 0.1,
    )
    running: Counter[str] = Counter()
    peak = {"calls": 0, "models": 0}
    ran: list[int] = []

    async def call(i: int, model: str, loops: int, fail: bool) -> None:
        async with scheduler.slot(model):
            running[model] += 1
            peak["calls"] = max(peak["calls"], sum(running.values()))
            peak["models"] = max(peak["models"], len(+running))
            assert set(+running) <= set(scheduler.resident())
            try:
                for _ in range(loops):
                    await asyncio.sleep(0)
                if fail:
                    raise RuntimeError(f"call {i} failed")
                ran.append(i)
            finally:
                running[model] -= 1

    async def timed(i: int, model: str, loops: int, fail: bool, timeout: float) -> None:
        await asyncio.wait_for(call(i, model, loops, fail), timeout)

    async def main() -> list[Any]:
        tasks: list[asyncio.Task[None]] = []
        for i in range(300):
            args = (i, rng.choice("abcde"), rng.randint(0, 4), rng.random() < 0.1)
            if rng.random() < 0.1:
                tasks.append(asyncio.create_task(timed(*args, 0.0005 * rng.random())))
            else:
                tasks.append(asyncio.create_task(call(*args)))
            if rng.random() < 0.3:
                await asyncio.sleep(0)
            if rng.random() < 0.1:
                rng.choice(tasks).cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = run(main())
    assert peak["calls"] <= 3 and peak["models"] <= 2
    assert scheduler.peak_in_progress <= 3
    assert scheduler.in_progress == 0 and scheduler.waiting == 0
    assert scheduler.snapshot()["in_progress"] == {} and scheduler.snapshot()["waiting"] == {}
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert set(kinds) <= {"NoneType", "RuntimeError", "CancelledError", "TimeoutError"}
    assert kinds["NoneType"] == len(ran) > 100
    assert scheduler.started >= len(ran)


def test_a_call_cancelled_in_the_queue_leaves_it() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order: list[str] = []

    async def call(tag: str) -> None:
        async with scheduler.slot(tag[0]):
            order.append(tag)

    async def main() -> None:
        await scheduler.acquire("A")
        b = asyncio.create_task(call("B1"))
        cs = [asyncio.create_task(call(t)) for t in ("C1", "C2")]
        await settle()
        b.cancel()
        await settle()
        assert scheduler.snapshot()["waiting"] == {"C": 2}
        scheduler.release("A")
        await asyncio.gather(*cs)
        assert b.cancelled()

    run(main())
    assert order == ["C1", "C2"] and scheduler.in_progress == 0
    assert scheduler.switches == 2  # A and C; B was never loaded


def test_a_call_cancelled_after_its_turn_came_hands_the_slot_on() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    order: list[str] = []

    async def call(tag: str) -> None:
        async with scheduler.slot("A"):
            order.append(tag)

    async def main() -> None:
        await scheduler.acquire("A")
        first = asyncio.create_task(call("first"))
        second = asyncio.create_task(call("second"))
        await settle()
        scheduler.release("A")  # grants `first` its slot ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.gather(first, second, return_exceptions=True)
        assert first.cancelled()

    run(main())
    assert order == ["second"]
    assert scheduler.in_progress == 0 and scheduler.started == 3


def test_a_call_timing_out_in_the_queue_holds_nothing() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)

    async def main() -> None:
        await scheduler.acquire("A")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(scheduler.acquire("B"), 0.01)
        assert scheduler.waiting == 0
        scheduler.release("A")

    run(main())
    assert scheduler.in_progress == 0 and scheduler.switches == 1


def test_a_failing_call_releases_its_slot() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)

    async def main() -> None:
        with pytest.raises(ValueError):
            async with scheduler.slot("A"):
                raise ValueError("boom")
        async with scheduler.slot("B"):
            pass

    run(main())
    assert scheduler.in_progress == 0 and scheduler.started == 2


def test_cancelling_a_starved_call_unblocks_the_others() -> None:
    clock = Clock()
    scheduler = HostScheduler(models_resident=1, max_concurrency=2, max_wait_s=5, clock=clock)
    started: list[str] = []

    async def call(tag: str, gate: asyncio.Event | None = None) -> None:
        async with scheduler.slot(tag[0]):
            started.append(tag)
            if gate is not None:
                await gate.wait()

    async def main() -> None:
        hold = asyncio.Event()
        a1 = asyncio.create_task(call("A1", hold))
        a2 = asyncio.create_task(call("A2"))  # ends at once
        b1 = asyncio.create_task(call("B1"))
        await settle()
        clock.now = 10
        a3 = asyncio.create_task(call("A3"))
        await settle()
        assert started == ["A1", "A2"]  # A3 waits: the starved B1 goes next, after A1
        b1.cancel()
        await settle()
        assert started == ["A1", "A2", "A3"]
        hold.set()
        await asyncio.gather(a1, a2, a3)

    run(main())
    assert scheduler.in_progress == 0 and scheduler.waiting == 0


def test_release_without_a_call_in_progress_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="without a call in progress"):
        HostScheduler().release("A")


def test_usable_from_one_event_loop_after_another() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    for arrivals in (["A1", "B1"], ["B2", "A2"]):
        run(scripted(scheduler, arrivals))
    assert scheduler.started == 4 and scheduler.in_progress == 0


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"models_resident": -1}, "models_resident"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_wait_s": -1.0}, "max_wait_s"),
    ],
)
def test_bad_limits_are_rejected(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        HostScheduler(**kwargs)


# ---------------------------------------------------------------------------- hosts
def test_one_scheduler_per_host_whatever_the_api_path() -> None:
    assert host_key("http://127.0.0.1:11434") == host_key("http://localhost:11434/v1/")
    assert host_key("https://api.example.com/v1") == "https://api.example.com:443"
    assert host_key("http://gpu1:11434") != host_key("http://gpu2:11434")
    hosts = HostSchedulers()
    one = hosts.get("http://127.0.0.1:11434", models_resident=1, max_concurrency=1)
    assert hosts.get("http://localhost:11434/v1", models_resident=3, max_concurrency=9) is one
    assert one.models_resident == 1 and len(hosts) == 1 and list(hosts) == [one]


# ---------------------------------------------------------------------------- the actor
def request(timeout: float = 5.0) -> ModelRequest:
    return ModelRequest(messages=(Message("user", "hi"),), timeout=timeout)


def test_actor_wraps_identity_and_model() -> None:
    scheduler = HostScheduler()
    managed = ManagedActor(FakeModel(name="x"), ActorSettings("fake", "qwen2.5:7b"))
    actor = AffinityActor(managed, scheduler)
    assert actor.model == "qwen2.5:7b" and actor.identity == "fake:x"
    assert AffinityActor(FakeModel(name="y"), scheduler).model == "fake:y"
    assert AffinityActor(FakeModel(name="y"), scheduler, "m").model == "m"
    assert actor.handles_timeout


def test_actor_timeout_counts_from_its_turn_not_from_the_queue() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    actor = AffinityActor(FakeModel(lambda r: "{}", delay=0.05), scheduler, "m")

    async def main() -> list[Any]:
        # The last of three waits ~0.1 s for its turn, longer than its 0.08 s timeout.
        return await asyncio.gather(*(actor.complete(request(0.08)) for _ in range(3)))

    assert [r.text for r in run(main())] == ["{}"] * 3
    slow = AffinityActor(FakeModel(lambda r: "{}", delay=5.0), scheduler, "m")
    with pytest.raises(TimeoutError):
        run(slow.complete(request(0.01)))
    assert scheduler.in_progress == 0


def test_executor_runs_a_two_step_workflow_stage_wise() -> None:
    """Many runs in flight: step 1 (model A) of every run, then step 2 (model B)."""
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    calls: list[str] = []

    def answer(model: str) -> Callable[[ModelRequest], str]:
        def respond(req: ModelRequest) -> str:
            calls.append(f"{model}{req.variables['item_id']}")
            return f'{{"item_id": {req.variables["item_id"]}, "label": "{model}"}}'

        return respond

    actors = {
        name: AffinityActor(FakeModel(answer(name), name=name, delay=0.001), scheduler, name)
        for name in ("A", "B")
    }
    out = {
        "type": "object",
        "properties": {"item_id": {"type": "integer"}, "label": {"type": "string"}},
        "required": ["item_id", "label"],
    }
    wf = Workflow(
        "two_models",
        input={"type": "object", "properties": {"item_id": {"type": "integer"}}},
        output=out,
        steps=[
            LLMStep("first", prompt="item {{ item_id }}", actor="A", output=out),
            LLMStep("second", prompt="item {{ first.item_id }}", actor="B", output=out),
        ],
    )
    executor = Executor(actors)

    async def main() -> list[Any]:
        return await asyncio.gather(*(executor.run(wf, {"item_id": i}) for i in range(8)))

    results = run(main())
    assert all(r.ok for r in results)
    assert calls == [f"A{i}" for i in range(8)] + [f"B{i}" for i in range(8)]
    assert scheduler.switches == 2


# ----------------------------------------------------- the hook inside ManagedActor
def test_managed_actor_holds_the_host_per_attempt_only() -> None:
    """Backoff sleeps and cache hits never hold the host; the wait is not in the timeout."""
    from turing import ActorError
    from turing.cache import MemoryCache

    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    held_while_sleeping: list[int] = []

    async def sleep(delay: float) -> None:
        held_while_sleeping.append(scheduler.in_progress)

    cache = MemoryCache()
    fake = FakeModel([ActorError("busy", transient=True, kind="server"), '{"a": 1}'])
    settings = ActorSettings("fake", "m1", max_retries=2)
    actor = ManagedActor(fake, settings, cache=lambda: cache, sleep=sleep, host=scheduler)
    first = run(actor.complete(request()))
    run(actor.accepted(request(), first))  # the answer validated: now it may be cached
    second = run(actor.complete(request()))  # a cache hit
    assert first.text == second.text == '{"a": 1}' and second.usage.cached == 1
    assert held_while_sleeping == [0]
    assert scheduler.started == 2 and scheduler.in_progress == 0  # two attempts, no hit

    slow = FakeModel(lambda r: "{}", delay=0.05)
    queued = ManagedActor(slow, settings.with_(model="m2"), host=scheduler)

    async def three() -> list[Any]:
        return await asyncio.gather(*(queued.complete(request(0.08)) for _ in range(3)))

    assert [r.text for r in run(three())] == ["{}"] * 3


def test_waiters_left_behind_by_a_closed_loop_are_dropped() -> None:
    scheduler = HostScheduler(models_resident=1, max_concurrency=1)
    loop = asyncio.new_event_loop()

    async def orphan_waiter() -> Any:
        await scheduler.acquire("A")
        waiting = scheduler.acquire("B")
        waiting.send(None)  # B now waits in the queue, and nobody will ever resume it
        return waiting

    orphan = loop.run_until_complete(orphan_waiter())
    loop.close()
    assert scheduler.waiting == 1
    scheduler.release("A")  # would grant B on the closed loop: it is dropped instead
    run(scripted(scheduler, ["C1"]))
    assert scheduler.in_progress == 0 and scheduler.waiting == 0
    assert scheduler.resident() == ["C"]
    orphan.close()


def test_a_model_and_its_latest_tag_are_one_model() -> None:
    """Ollama's default tag: `llama3` and `llama3:latest` share a residency place and a queue."""
    scheduler = HostScheduler(models_resident=1, max_concurrency=1, resident=["llama3:latest"])

    async def main() -> list[str]:
        order: list[str] = []

        async def call(model: str, tag: str) -> None:
            async with scheduler.slot(model):
                order.append(tag)
                await asyncio.sleep(0)

        await scheduler.acquire("qwen2.5:7b")  # hold the host, queue the rest behind it
        tasks = [
            asyncio.create_task(call(m, t))
            for m, t in [("llama3", "l1"), ("mistral", "m1"), ("llama3:latest", "l2")]
        ]
        await settle()
        scheduler.release("qwen2.5:7b")
        await asyncio.gather(*tasks)
        return order

    assert run(main()) == ["l1", "l2", "m1"]  # both llama3 calls go together
    assert scheduler.resident() == ["mistral"]
    assert scheduler.switches == 3  # qwen, llama3 once, mistral: never llama3 twice


def test_model_key() -> None:
    from turing.actors.affinity import model_key

    assert model_key("llama3") == model_key("llama3:latest") == "llama3"
    assert model_key("library/llama3:latest") == "library/llama3"
    assert model_key("qwen2.5:7b") == "qwen2.5:7b"
    assert model_key("registry:5000/llama3:latest") == "registry:5000/llama3"
    assert model_key("registry:5000/llama3") == "registry:5000/llama3"
