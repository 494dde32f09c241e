"""Model-affinity batching: order the calls to one model host so loaded models are reused.

A model host (one server: a single GPU running Ollama, a vLLM box) holds at most
`models_resident` models at once, and loading another one costs seconds. Calls issued in
the order tasks happen to reach them (per item: step 1 on model A, then step 2 on model B)
swap on every change. A `HostScheduler` holds calls back and decides which one starts next,
so that with many tasks in flight the work goes stage-wise: step 1 of every ready task on
A, then step 2 on B.

    host = HostScheduler(models_resident=1, max_concurrency=1)
    async with host.slot("qwen2.5:7b"):      # waits for its turn, then holds a slot
        response = await provider.complete(request)

    actor = AffinityActor(managed_actor, host)  # the same, as an Actor

When a call may start (fewer than `max_concurrency` in progress), the rules, in order:

1. Starvation bound. A model is *starved* when its waiting calls have gone unserved for
   `max_wait_s`, counted from the later of the last start of a call for that model and
   the arrival of its oldest waiting call (so a long queue for a model that is being
   served is not starved: it is moving). The model starved longest goes next; until one
   of its calls can start (the host first drains the model it must evict), nothing else
   starts. `max_wait_s=None` turns the bound off (pure throughput).
2. Resident first. While any call waits for a model believed loaded, the oldest such call
   starts: no swap.
3. Switch. Otherwise the model with the most waiting calls (ties: the oldest call) is
   loaded as soon as there is room: a free residency place, or a resident model with no
   call in progress, least recently used first, which is evicted.

Within one model, calls start first come, first served. A call therefore waits at most
about `max_wait_s`, plus one drain and swap for each model starved before its own, plus
the calls ahead of it for its own model; nothing waits forever as long as calls in
progress end (they have timeouts).

`models_resident=0` means no residency limit (every model counts as loaded): a plain
first-come-first-served limit of `max_concurrency`. Residency is the scheduler's belief,
from the calls it started; another client of the same host, or the server unloading an
idle model on its own, can make it wrong, which costs swaps, never correctness.

Correctness: the decision is synchronous (no await between choosing a call and counting
it in progress), a slot is released exactly once, also when the caller is cancelled or
fails, and a waiter cancelled in the queue leaves it. One scheduler serves one event loop
at a time (like the rest of the actor layer: not thread-safe); it may be reused by later
loops (`asyncio.run` after `asyncio.run`).

Hosts are identified by scheme, host and port (`host_key`), so Ollama's native API and its
OpenAI-compatible `/v1` on one server share a scheduler; `HostSchedulers` keeps one per host.
Models are identified by `model_key`: Ollama's default tag is left out, so `llama3` and
`llama3:latest` are one model (one residency place, one queue).

Several processes on one host: `share(SharedHost(...))` (turing.actors.shared_host) makes
the scheduler follow the host's model phase, agreed through the database with every other
process: a call starts only for a model open in the phase, and only among the calls the
database already knows about (those queued at the last sync); the rules above then order the
calls allowed. A background task per event loop syncs after calls arrive or end, every
`poll_s` while calls wait for a model outside the phase, and at least every `ttl_s / 3`
while any call is in flight (its heartbeat). Without `share`, nothing changes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from turing.actors.base import Actor, ModelRequest, ModelResponse

if TYPE_CHECKING:
    from turing.actors.shared_host import LocalDemand, SharedHost
    from turing.store.db import Database

log = logging.getLogger("turing.actors.affinity")

DEFAULT_MAX_WAIT_S = 300.0

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "AffinityActor",
    "HostScheduler",
    "HostSchedulers",
    "host_key",
    "model_key",
]


def model_key(model: str) -> str:
    """The name the scheduler knows a model by: Ollama's default tag left out, so `llama3`
    and `llama3:latest` are one model (one residency place, one queue). Other tags stay
    (`qwen2.5:7b`), and a `:` in a registry host (`host:5000/m`) is not taken for a tag."""
    name = model.strip()
    base = name[: -len(":latest")] if name.endswith(":latest") else ""
    if base and ":" not in base.rpartition("/")[2]:
        return base
    return name


@dataclass(eq=False)
class _Waiter:
    model: str
    since: float
    seq: int
    future: asyncio.Future[None] = field(repr=False)


class HostScheduler:
    """Decides the order in which calls to one model host start (see the module docstring).

    `models_resident`: how many models the host holds at once (0: no limit).
    `max_concurrency`: calls in progress at once (1: a GPU serving one request at a time;
    None: no limit). `max_wait_s`: the starvation bound (None: off). `resident`: models
    believed loaded at the start (e.g. from Ollama's `/api/ps`), least recently used first.
    `clock`: monotonic seconds (tests pass a fake one).

    Counters: `switches` (loads of a model not believed resident, including the first load
    on an empty host: what the simulator counts as swaps), `forced_switches` (those made by
    the starvation bound), `evictions`, `started`, `peak_in_progress`.
    """

    def __init__(
        self,
        models_resident: int = 1,
        max_concurrency: int | None = 1,
        *,
        max_wait_s: float | None = DEFAULT_MAX_WAIT_S,
        resident: Iterable[str] = (),
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if models_resident < 0:
            raise ValueError(f"models_resident must be >= 0, got {models_resident}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1 or None, got {max_concurrency}")
        if max_wait_s is not None and max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0 or None, got {max_wait_s}")
        self.models_resident = models_resident
        self.max_concurrency = max_concurrency
        self.max_wait_s = max_wait_s
        self.name = name
        self._clock = clock
        self._seq = itertools.count()
        self._queues: dict[str, deque[_Waiter]] = {}  # model -> waiting calls, oldest first
        self._resident: OrderedDict[str, None] = OrderedDict()  # least recently used first
        if models_resident:
            for model in list(dict.fromkeys(map(model_key, resident)))[-models_resident:]:
                self._resident[model] = None
        self._running: dict[str, int] = {}  # model -> calls in progress
        self._last_start: dict[str, float] = {}
        self.in_progress = 0
        self.switches = 0
        self.forced_switches = 0
        self.evictions = 0
        self.started = 0
        self.peak_in_progress = 0
        # shared with other processes through the database (share); None: this process only
        self.shared: SharedHost | None = None
        self._granted: dict[str, int] = {}  # calls per model that may start before next sync
        self._dirty = False
        self._sync_task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def share(self, shared: SharedHost) -> None:
        """Follow `shared`'s model phase from now on (see the module docstring)."""
        self.shared = shared

    def __repr__(self) -> str:
        return (
            f"HostScheduler({self.name or 'host'!s}, models_resident={self.models_resident}, "
            f"max_concurrency={self.max_concurrency}, in_progress={self.in_progress}, "
            f"waiting={self.waiting}, resident={self.resident()})"
        )

    # ------------------------------------------------------------------ public surface
    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        """Wait for this call's turn on the host, hold the slot while the body runs."""
        await self.acquire(model)
        try:
            yield
        finally:
            self.release(model)

    async def acquire(self, model: str) -> None:
        """Wait until a call for `model` may start; pair with exactly one `release(model)`.

        Cancelled while waiting, the call leaves the queue and holds nothing."""
        model = model_key(model)
        waiter = _Waiter(
            model, self._clock(), next(self._seq), asyncio.get_running_loop().create_future()
        )
        self._queues.setdefault(model, deque()).append(waiter)
        self._dispatch()
        if waiter.future.done():
            return
        try:
            await waiter.future
        except BaseException:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(model)  # granted, but the caller was cancelled before it ran
            else:
                self._forget(waiter)
                self._dispatch()
            raise

    def release(self, model: str) -> None:
        """A call for `model` has ended (answered, failed or cancelled): start the next."""
        model = model_key(model)
        running = self._running.get(model, 0)
        if running <= 0:
            raise RuntimeError(f"release({model!r}) without a call in progress for it")
        if running == 1:
            del self._running[model]
        else:
            self._running[model] = running - 1
        self.in_progress -= 1
        self._dispatch()

    @property
    def waiting(self) -> int:
        return sum(1 for q in self._queues.values() for w in q if not w.future.done())

    def resident(self) -> list[str]:
        """Models believed loaded, least recently used first (empty when there is no limit)."""
        return list(self._resident)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "models_resident": self.models_resident,
            "max_concurrency": self.max_concurrency,
            "max_wait_s": self.max_wait_s,
            "resident": self.resident(),
            "in_progress": dict(self._running),
            "waiting": {
                m: n
                for m, q in self._queues.items()
                if (n := sum(1 for w in q if not w.future.done()))
            },
            "switches": self.switches,
            "forced_switches": self.forced_switches,
            "evictions": self.evictions,
            "started": self.started,
            "peak_in_progress": self.peak_in_progress,
        }

    # ----------------------------------------------------------------------- decisions
    def _room(self) -> bool:
        return self.max_concurrency is None or self.in_progress < self.max_concurrency

    def _is_resident(self, model: str) -> bool:
        return not self.models_resident or model in self._resident

    def _can_start(self, model: str) -> bool:
        """Resident, or loadable now: a free place or an idle resident model to evict."""
        if self._is_resident(model) or len(self._resident) < self.models_resident:
            return True
        return any(m not in self._running for m in self._resident)

    def _heads(self) -> dict[str, _Waiter]:
        """The oldest live waiter of each model; drops waiters cancelled meanwhile (their
        handler has not run yet) and any left behind by an event loop closed under them."""
        heads: dict[str, _Waiter] = {}
        for model in list(self._queues):
            queue = self._queues[model]
            while queue and (queue[0].future.done() or queue[0].future.get_loop().is_closed()):
                queue.popleft()
            if queue:
                heads[model] = queue[0]
            else:
                del self._queues[model]
        return heads

    def _choose(self) -> tuple[_Waiter | None, bool]:
        """(the call to start next or None to wait, whether the starvation bound chose it)."""
        heads = self._heads()
        if self.shared is not None:  # only models open in the shared phase, calls it knows
            heads = {m: h for m, h in heads.items() if self._granted.get(m, 0) > 0}
        if not heads:
            return None, False
        if self.max_wait_s is not None and len(heads) > 1:
            now = self._clock()
            unserved = {
                m: max(h.since, self._last_start.get(m, -math.inf)) for m, h in heads.items()
            }
            starved = [m for m, t in unserved.items() if now - t >= self.max_wait_s]
            if starved:
                model = min(starved, key=lambda m: (unserved[m], heads[m].seq))
                return (heads[model] if self._can_start(model) else None), True
        here = [h for m, h in heads.items() if self._is_resident(m)]
        if here:
            return min(here, key=lambda h: h.seq), False
        model = max(heads, key=lambda m: (len(self._queues[m]), -heads[m].seq))
        return (heads[model] if self._can_start(model) else None), False

    def _dispatch(self) -> None:
        self._dispatch_now()
        if self.shared is not None:
            self._kick()

    def _dispatch_now(self) -> int:
        started = 0
        while self._room():
            waiter, forced = self._choose()
            if waiter is None:
                break
            self._start(waiter, forced)
            started += 1
        return started

    def _start(self, waiter: _Waiter, forced: bool) -> None:
        model = waiter.model
        queue = self._queues[model]
        queue.popleft()
        if not queue:
            del self._queues[model]
        if self.models_resident:
            if model in self._resident:
                self._resident.move_to_end(model)
            else:
                if len(self._resident) >= self.models_resident:
                    victim = next(m for m in self._resident if m not in self._running)
                    del self._resident[victim]
                    self.evictions += 1
                self._resident[model] = None
                self.switches += 1
                self.forced_switches += int(forced)
        if self.shared is not None:
            self._granted[model] -= 1
        self._running[model] = self._running.get(model, 0) + 1
        self.in_progress += 1
        self.peak_in_progress = max(self.peak_in_progress, self.in_progress)
        self.started += 1
        self._last_start[model] = self._clock()
        waiter.future.set_result(None)

    # ------------------------------------------------------------------ shared phase
    def _kick(self) -> None:
        """Something changed: sync with the shared phase soon (one sync task per loop)."""
        self._dirty = True
        loop = asyncio.get_running_loop()
        task = self._sync_task
        if task is None or task.done() or task.get_loop() is not loop or self._wake is None:
            self._wake = asyncio.Event()
            self._sync_task = loop.create_task(self._sync_loop(self._wake))
        else:
            self._wake.set()

    def _demand(self) -> dict[str, LocalDemand]:
        from turing.actors.shared_host import LocalDemand

        mono, wall = self._clock(), time.time()
        out: dict[str, LocalDemand] = {}
        for model, queue in self._queues.items():
            live = [w for w in queue if not w.future.done()]
            if live:
                since = wall - (mono - min(w.since for w in live))
                out[model] = LocalDemand(self._running.get(model, 0), len(live), since)
        for model, running in self._running.items():
            if model not in out:
                out[model] = LocalDemand(running, 0, None)
        return out

    async def _sync_loop(self, wake: asyncio.Event) -> None:
        shared = self.shared
        assert shared is not None
        while True:
            self._dirty = False
            wake.clear()
            demand = self._demand()
            self._granted = {}  # nothing starts while the database is being told
            try:
                open_models = await asyncio.to_thread(shared.sync, demand)
            except Exception:
                log.exception("shared host %s: sync failed", shared.host)
                open_models = frozenset()
                self._dirty = bool(demand)
                await asyncio.sleep(shared.poll_s)
                if self._dirty:
                    continue
            self._granted = {
                m: d.queued for m, d in demand.items() if d.queued and m in open_models
            }
            if self._dispatch_now():
                self._dirty = True
            if self._dirty:
                continue
            if not demand:
                return  # our registrations are gone; the next call starts a new loop
            blocked = any(m not in open_models for m in self._heads())
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    wake.wait(), shared.poll_s if blocked else shared.heartbeat_s
                )

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.model)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._queues[waiter.model]


def host_key(url: str) -> str:
    """`scheme://host:port` of a base URL: one GPU, whichever API path it is reached by."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{port}"


class HostSchedulers:
    """One `HostScheduler` per model host (`host_key` of the base URL), made on first use."""

    def __init__(self, db: Database | None = None, holder: str = "") -> None:
        """With `db`, hosts made with `shared=True` are coordinated through it as `holder`
        (unique per process, e.g. the worker id); without, every host is this process's."""
        self._hosts: dict[str, HostScheduler] = {}
        self._shared_keys: set[str] = set()
        self._db = db
        self._holder = holder
        self._sharing: dict[str, SharedHost] = {}

    def get(
        self,
        url: str,
        *,
        models_resident: int,
        max_concurrency: int | None,
        max_wait_s: float | None = DEFAULT_MAX_WAIT_S,
        shared: bool = False,
    ) -> HostScheduler:
        """The scheduler for `url`'s host; the first caller's limits make it. `shared`: the
        host is shared with other processes (followed once `share` gives a database)."""
        key = host_key(url)
        if key not in self._hosts:
            self._hosts[key] = HostScheduler(
                models_resident, max_concurrency, max_wait_s=max_wait_s, name=key
            )
        if shared and key not in self._shared_keys:
            self._shared_keys.add(key)
            self._attach(key)
        return self._hosts[key]

    def share(self, db: Database, holder: str) -> None:
        """Coordinate the shared hosts (made with `shared=True`, now or later) through `db`,
        as `holder` (unique per process, e.g. the worker id)."""
        self._db, self._holder = db, holder
        for key in self._shared_keys:
            self._attach(key)

    def _attach(self, key: str) -> None:
        if self._db is None or key in self._sharing:
            return
        from turing.actors.shared_host import SharedHost

        scheduler = self._hosts[key]
        shared = SharedHost(
            self._db,
            key,
            self._holder,
            models_resident=scheduler.models_resident,
            max_wait_s=scheduler.max_wait_s,
        )
        self._sharing[key] = shared
        scheduler.share(shared)

    def release_all(self) -> None:
        """Forget this process's registrations on every shared host (on shutdown)."""
        for shared in self._sharing.values():
            shared.release_all()

    def __iter__(self) -> Iterator[HostScheduler]:
        return iter(self._hosts.values())

    def __len__(self) -> int:
        return len(self._hosts)


class AffinityActor:
    """An actor whose calls wait for their turn on a host's scheduler.

    The wait is not part of the call's timeout: once the slot is granted, the inner call
    gets `request.timeout` (unless the inner actor manages its own timeout, as a
    `ManagedActor` does). Wrapping a `ManagedActor` keeps the slot through its retries
    and backoff sleeps and also for response-cache hits; the finer integration is the
    slot around each attempt inside `ManagedActor` (see the integration notes).
    `model` defaults to the inner actor's `settings.model`, else its identity.
    """

    handles_timeout = True

    def __init__(self, inner: Actor, scheduler: HostScheduler, model: str | None = None) -> None:
        self.inner = inner
        self.scheduler = scheduler
        self.model = model or _model_of(inner)

    @property
    def identity(self) -> str:
        return self.inner.identity

    def __repr__(self) -> str:
        return f"AffinityActor({self.inner!r}, model={self.model!r})"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        async with self.scheduler.slot(self.model):
            if getattr(self.inner, "handles_timeout", False):
                return await self.inner.complete(request)
            return await asyncio.wait_for(self.inner.complete(request), request.timeout)


def _model_of(actor: Actor) -> str:
    settings = getattr(actor, "settings", None)
    model = getattr(settings, "model", None)
    return model if isinstance(model, str) and model else actor.identity
