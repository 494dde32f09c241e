"""Shared model hosts: one model phase per host, agreed through the database by every process.

A `HostScheduler` (turing.actors.affinity) orders the calls of ONE process so that calls to a
host holding `models_resident = K` models reuse the resident ones. Several worker processes on
one GPU host each order only their own calls, so between them they interleave models and the
host swaps far more than needed. `SharedHost` closes that gap, in the spirit of the limiter:

- The host has a *model phase*: the models (at most K) being served now, kept in one row of
  `turing_host_phases` (which is also the host's lock row).
- Each process registers its *demand* per model in `turing_host_demand`: calls in flight,
  calls queued, and since when the oldest queued call waits. A row lives until `expires_at`
  (renewed by every sync, at least every `ttl / 3` while the process has calls), so a dead
  process stops counting after `ttl` and never blocks the host.
- A process starts calls for a model only while the model is *open* in the phase, and only as
  many as it had queued when it last synced (so the database always knows about a call before
  it starts: a model the process is about to use is never dropped from the phase under it).
- Every sync (one transaction, the host row locked) rewrites the process's demand and moves
  the phase (`next_phase`): a model leaves it when no live process has calls in flight or
  queued for it; free places go to the waiting model with the most queued calls (a starved
  one first). The starvation bound: when a model not in the phase has waited `max_wait_s`
  and the phase is full, the phase model that joined first (and has been served at least
  `max_wait_s`) is *closed*: no new calls start for it, and it leaves once its calls in
  flight end and every process still queueing for it has synced since (so none starts one
  more); then the starved model joins.

    shared = SharedHost(db, host="http://127.0.0.1:11434", holder=worker_id, models_resident=1)
    scheduler.share(shared)   # or HostSchedulers.share(db, holder) for every shared host

Times are wall-clock (`time.time`): processes on several machines need clocks in step (NTP).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from turing.store.db import Database
from turing.store.hosts import Demand, HostStore, PhaseModel

__all__ = ["Demand", "LocalDemand", "PhaseModel", "SharedHost", "next_phase"]

DEFAULT_TTL_S = 15.0
DEFAULT_POLL_S = 0.05
_PRUNE_EVERY = 1.0


@dataclass(frozen=True)
class LocalDemand:
    """One process's calls for one model: in flight, queued, and the oldest queued call's
    arrival (wall-clock seconds; None when nothing is queued)."""

    in_flight: int
    queued: int
    waiting_since: float | None = None


def next_phase(
    phase: Sequence[PhaseModel],
    demand: Sequence[Demand],
    *,
    models_resident: int,
    max_wait_s: float | None,
    now: float,
) -> list[PhaseModel]:
    """The phase after this sync (pure: the rules of the module docstring)."""
    in_flight: dict[str, int] = {}
    queued: dict[str, int] = {}
    since: dict[str, float] = {}
    for d in demand:
        in_flight[d.model] = in_flight.get(d.model, 0) + d.in_flight
        queued[d.model] = queued.get(d.model, 0) + d.queued
        if d.queued and d.waiting_since is not None:
            since[d.model] = min(since.get(d.model, math.inf), d.waiting_since)
    if models_resident <= 0:  # no residency limit: every wanted model is open
        wanted = sorted(m for m in queued if in_flight[m] or queued[m])
        return [PhaseModel(m, now) for m in wanted]

    kept: list[PhaseModel] = []
    just_closed: set[str] = set()  # had its turn: not starved now, whatever it still queues
    for pm in phase:
        busy = in_flight.get(pm.model, 0)
        if not busy and not queued.get(pm.model, 0):
            continue  # nobody wants it any more
        if pm.closed_at is not None and not busy:
            closed_at = pm.closed_at
            stale = any(
                d.model == pm.model and d.queued and d.updated_at < closed_at for d in demand
            )
            if not stale:
                just_closed.add(pm.model)
                continue  # drained, and every process queueing for it knows it is closed
        kept.append(pm)

    present = {pm.model for pm in kept}
    waiting = [m for m, n in queued.items() if n and m not in present]
    starved = []
    if max_wait_s is not None:
        starved = [
            m for m in waiting if m not in just_closed and now - since.get(m, now) >= max_wait_s
        ]
    if starved and len(kept) >= models_resident and all(pm.open for pm in kept):
        victim = min(kept, key=lambda pm: pm.joined_at)
        if now - victim.joined_at >= max_wait_s:  # type: ignore[operator]
            kept = [PhaseModel(pm.model, pm.joined_at, now) if pm is victim else pm for pm in kept]
    while len(kept) < models_resident and waiting:
        if starved:
            model = min(starved, key=lambda m: (since.get(m, now), m))
            starved.remove(model)
        else:
            model = max(waiting, key=lambda m: (queued[m], -since.get(m, now), m))
        waiting.remove(model)
        kept.append(PhaseModel(model, now))
    return kept


class SharedHost:
    """One process's view of one shared host's model phase (see the module docstring).

    `sync(demand)` is synchronous database work (run it in a thread): it records this
    holder's demand, moves the phase, and returns the models open to this holder now.
    """

    def __init__(
        self,
        db: Database,
        host: str,
        holder: str,
        *,
        models_resident: int,
        max_wait_s: float | None,
        ttl_s: float = DEFAULT_TTL_S,
        poll_s: float = DEFAULT_POLL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s <= 0 or poll_s <= 0:
            raise ValueError("ttl_s and poll_s must be positive")
        self.db = db
        self.rows = HostStore(db)
        self.host = host
        self.holder = holder
        self.models_resident = models_resident
        self.max_wait_s = max_wait_s
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.clock = clock
        self.syncs = 0
        self._pruned = -math.inf

    @property
    def heartbeat_s(self) -> float:
        return self.ttl_s / 3

    def __repr__(self) -> str:
        return f"SharedHost({self.host}, holder={self.holder!r}, K={self.models_resident})"

    def sync(self, demand: Mapping[str, LocalDemand]) -> frozenset[str]:
        """Record this holder's demand, move the phase, return the open models."""
        now = self.clock()
        mine = [
            Demand(self.holder, model, d.in_flight, d.queued, d.waiting_since, now)
            for model, d in sorted(demand.items())
            if d.in_flight or d.queued
        ]
        with self.rows.locked(self.host, now) as tx:
            tx.replace_demand(self.holder, mine, now + self.ttl_s)
            if now - self._pruned >= _PRUNE_EVERY:
                tx.prune_demand(now)
                self._pruned = now
            moved = next_phase(
                tx.phase,
                tx.live_demand(now),
                models_resident=self.models_resident,
                max_wait_s=self.max_wait_s,
                now=now,
            )
            if moved != tx.phase:
                tx.set_phase(moved, now)
        self.syncs += 1
        return frozenset(pm.model for pm in moved if pm.open)

    def phase(self) -> list[PhaseModel]:
        """The phase as stored (for inspection and tests)."""
        return self.rows.phase(self.host)

    def release_all(self) -> None:
        """Forget every registration of this holder (on shutdown)."""
        self.rows.release_holder(self.holder)
