"""Leases in the database: the heartbeat's extension and what an owner holds.

`extend` is the heartbeat's statement. On PostgreSQL it locks the owner's running rows in id
order and skips the ones another transaction has locked (`FOR NO KEY UPDATE SKIP LOCKED`),
so a heartbeat never waits on a row lock and cannot deadlock with a multi-row update that
locks the same rows in another order (a completion batch, another worker's reclaim). A row
it skips is either being finished by its owner right now or being reclaimed because its
lease already ran out; either way the next beat sees it again if it is still ours.
"""

from __future__ import annotations

from turing.store.browse import WorkerBeats
from turing.store.db import Database
from turing.store.store import Store, TaskRow, _task


class LeaseStore:
    """Lease rows of `turing_tasks` for heartbeats and the worker's shutdown."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def extend(self, owner: str, lease_s: float) -> int:
        """Set the lease of every running task `owner` holds (and nobody else has locked)
        to `lease_s` from now on the database's clock (as claims do: machines whose clocks
        disagree still agree on leases); how many there were."""
        with self.db.tx() as tx:
            now = Store.now(tx)
            n: int = tx.x("extend_leases", owner=owner, until=now + lease_s)
            WorkerBeats(tx).beat(owner, lease_s, n, now)  # the dashboard's live workers
        return n

    def register(self, owner: str, lease_s: float) -> None:
        """Show `owner` as a live worker before its first beat (the dashboard)."""
        with self.db.tx() as tx:
            WorkerBeats(tx).beat(owner, lease_s, 0, Store.now(tx))

    def forget(self, owner: str) -> None:
        """`owner` stopped beating on purpose: no longer a worker."""
        with self.db.tx() as tx:
            WorkerBeats(tx).forget(owner)

    def owned(self, owner: str) -> list[TaskRow]:
        """The tasks `owner` holds (status running), in id order."""
        with self.db.read() as tx:
            return [_task(r) for r in tx.q("owned_tasks", owner=owner)]
