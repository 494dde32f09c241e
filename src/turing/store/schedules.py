"""Schedule ticks in the database (`turing_schedule_ticks`): firing a tick exactly once,
recording its outcome, and reading the fired ticks back (`turing.schedules` has the cron)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turing.store.db import Database, Row


@dataclass(frozen=True)
class Tick:
    """One fired tick; `finished_at` is None while it runs (or if its worker died)."""

    schedule: str
    tick_at: float
    worker: str
    fired_at: float
    finished_at: float | None
    tasks: int | None
    error: str | None

    @classmethod
    def of(cls, row: Row) -> Tick:
        finished, tasks = row["finished_at"], row["tasks"]
        return cls(
            str(row["schedule"]),
            float(row["tick_at"]),
            str(row["worker"]),
            float(row["fired_at"]),
            None if finished is None else float(finished),
            None if tasks is None else int(tasks),
            row["error"],
        )

    def __getitem__(self, field: str) -> Any:
        """`tick["tick_at"]` for callers written against the old dict rows (cli/worker.py);
        use the attributes in new code."""
        return getattr(self, field)


class TickStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, schedule: str, tick_at: float, worker: str, now: float) -> bool:
        """Insert the tick: True for exactly one caller per (schedule, tick), ever."""
        with self.db.tx() as tx:
            n: int = tx.x("claim_tick", schedule=schedule, tick_at=tick_at, worker=worker, now=now)
        return n == 1

    def finish(
        self,
        schedule: str,
        tick_at: float,
        worker: str,
        now: float,
        *,
        tasks: int,
        error: str | None,
    ) -> None:
        with self.db.tx() as tx:
            tx.x(
                "finish_tick",
                schedule=schedule,
                tick_at=tick_at,
                worker=worker,
                now=now,
                tasks=tasks,
                error=error,
            )

    def last(self) -> dict[str, Tick]:
        """The newest fired tick of every schedule that ever fired."""
        with self.db.read() as tx:
            return {r["schedule"]: Tick.of(r) for r in tx.q("last_ticks")}

    def list(self, schedule: str | None = None) -> list[Tick]:
        """Every fired tick (of one schedule), by schedule and time."""
        with self.db.read() as tx:
            rows = tx.q("list_ticks", any_schedule=schedule is None, schedule=schedule or "")
        return [Tick.of(r) for r in rows]
