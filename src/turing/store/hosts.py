"""Shared model hosts in the database (`turing_host_phases`, `turing_host_demand`): the rows
`turing.actors.shared_host.SharedHost` reads and writes, typed. The phase rules
(`next_phase`) stay with the actor; `HostStore.locked` gives one sync its transaction with
the host row locked (PostgreSQL: `FOR UPDATE`, one sync of a host at a time; SQLite
serialises writers anyway).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from turing.store.db import Database, Row, Tx


@dataclass(frozen=True)
class Demand:
    """A live registration row: one holder's calls for one model (in flight, queued, and
    the oldest queued call's arrival), and when it last synced."""

    holder: str
    model: str
    in_flight: int
    queued: int
    waiting_since: float | None
    updated_at: float

    @classmethod
    def of(cls, row: Row) -> Demand:
        since = row["waiting_since"]
        return cls(
            str(row["holder"]),
            str(row["model"]),
            int(row["in_flight"]),
            int(row["queued"]),
            None if since is None else float(since),
            float(row["updated_at"]),
        )


@dataclass(frozen=True)
class PhaseModel:
    """A model in a host's phase: when it joined, and when it was closed (None: open)."""

    model: str
    joined_at: float
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None


def load_phase(text: str) -> list[PhaseModel]:
    """The phase from its stored JSON: `[[model, joined_at, closed_at], ...]`."""
    rows = json.loads(text)
    return [PhaseModel(str(m), float(j), None if c is None else float(c)) for m, j, c in rows]


def dump_phase(phase: Sequence[PhaseModel]) -> str:
    return json.dumps([[pm.model, pm.joined_at, pm.closed_at] for pm in phase])


class HostTx:
    """One sync of one host: its transaction, the host row locked, the stored phase read."""

    def __init__(self, tx: Tx, host: str, phase: list[PhaseModel]) -> None:
        self._tx = tx
        self.host = host
        self.phase = phase

    def replace_demand(self, holder: str, demand: Sequence[Demand], expires_at: float) -> None:
        """The holder's registrations become `demand` (rows with nothing to do left out by
        the caller), alive until `expires_at`."""
        self._tx.x("host_demand_clear", host=self.host, holder=holder)
        if demand:
            self._tx.many(
                "host_demand_insert",
                [
                    {
                        "host": self.host,
                        "holder": d.holder,
                        "model": d.model,
                        "in_flight": d.in_flight,
                        "queued": d.queued,
                        "waiting_since": d.waiting_since,
                        "now": d.updated_at,
                        "expires_at": expires_at,
                    }
                    for d in demand
                ],
            )

    def prune_demand(self, now: float) -> None:
        """Delete the host's registrations that expired by `now`."""
        self._tx.x("host_demand_prune", host=self.host, now=now)

    def live_demand(self, now: float) -> list[Demand]:
        """Every holder's live registrations for the host, by holder and model."""
        return [Demand.of(r) for r in self._tx.q("host_demand_live", host=self.host, now=now)]

    def set_phase(self, phase: Sequence[PhaseModel], now: float) -> None:
        self._tx.x("host_phase_update", host=self.host, models=dump_phase(phase), now=now)
        self.phase = list(phase)


class HostStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def locked(self, host: str, now: float) -> Iterator[HostTx]:
        """A write transaction with the host's row created if need be and locked."""
        with self.db.tx() as tx:
            tx.x("host_phase_ensure", host=host, now=now)
            yield HostTx(tx, host, _phase(tx, host))

    def phase(self, host: str) -> list[PhaseModel]:
        """The phase as stored (empty for a host never synced)."""
        with self.db.tx() as tx:
            return _phase(tx, host)

    def release_holder(self, holder: str) -> None:
        """Delete every registration of the holder, on every host."""
        with self.db.tx() as tx:
            tx.x("host_demand_release_holder", holder=holder)


def _phase(tx: Tx, host: str) -> list[PhaseModel]:
    row = tx.one("host_phase_lock", host=host)
    return load_phase(row["models"] if row else "[]")
