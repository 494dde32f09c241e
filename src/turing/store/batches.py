"""Provider batches' rows (`turing_batches`, `turing_batch_items`): the statements
`turing.batch` runs, typed. Every move of a task into or out of a batch is guarded by the
task's status and the item's state, so two workers ingesting one results file at once
each take different items and every answer is ingested once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from turing.store.db import Row, Tx
from turing.store.history import Entry, record
from turing.store.store import Store, TaskRow

OPEN = ("submitting", "submitted")  # batch statuses a poller looks at


@dataclass(frozen=True)
class BatchRow:
    id: int
    actor: str
    provider: str
    provider_batch_id: str | None
    idempotency_key: str
    status: str
    provider_status: str | None
    requests: int
    succeeded: int
    errored: int
    owner: str
    error: str | None
    budget_hold: str | None  # JSON: the period budgets' reservation of the batch's quotes
    created_at: float
    submitted_at: float | None
    expires_at: float | None
    polled_at: float | None
    finished_at: float | None
    items: dict[str, int]  # item state -> how many

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ItemRow:
    id: int
    batch_id: int
    task_id: int
    attempt: int
    round: int
    custom_id: str
    request_hash: str
    state: str
    answer: str | None
    input_tokens: int
    output_tokens: int
    error: str | None
    since: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewItem:
    """A request about to go into a batch."""

    task_id: int
    attempt: int
    round: int
    custom_id: str
    request_hash: str
    since: float


def _item(r: Row) -> ItemRow:
    return ItemRow(**{f.name: r[f.name] for f in fields(ItemRow)})


def _task(r: Row) -> TaskRow:
    data = r["input"]
    return TaskRow(
        r["id"],
        r["workflow"],
        r["version"],
        r["subject"],
        json.loads(data) if isinstance(data, str) else data,
        r["attempts"],
        r["priority"],
    )


class Batches:
    """The batch tables of one store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # ------------------------------------------------------------------ submission
    def record(
        self,
        actor: str,
        provider: str,
        key: str,
        owner: str,
        items: Sequence[NewItem],
        *,
        budget_hold: str | None = None,
    ) -> tuple[int, list[NewItem]]:
        """In one transaction: the batch (status 'submitting', before the provider hears of
        it), its claimed tasks moved `running` -> `submitted` (guarded by owner) and an item
        for each task that moved. Returns the batch id and the items recorded."""
        now = time.time()
        with self.db.tx() as tx:
            row = tx.one(
                "batch_insert",
                actor=actor,
                provider=provider,
                key=key,
                requests=len(items),
                owner=owner,
                budget_hold=budget_hold,
                now=now,
            )
            assert row is not None
            batch_id = int(row["id"])
            moved = {
                int(r["id"])
                for r in tx.q(
                    "batch_tasks_submit", ids=[i.task_id for i in items], owner=owner, now=now
                )
            }
            kept = [i for i in items if i.task_id in moved]
            tx.many(
                "batch_item_insert",
                [{"batch_id": batch_id, **i.__dict__} for i in kept],
            )
            if len(kept) != len(items):
                tx.x("batch_set_requests", id=batch_id, requests=len(kept))
        return batch_id, kept

    def submitted(
        self, batch_id: int, provider_batch_id: str, expires_at: float | None, status: str
    ) -> bool:
        """The provider took the batch: its id recorded (only from 'submitting')."""
        with self.db.tx() as tx:
            n: int = tx.x(
                "batch_set_submitted",
                id=batch_id,
                provider_batch_id=provider_batch_id,
                now=time.time(),
                expires_at=expires_at,
                provider_status=status,
            )
        return n == 1

    # ---------------------------------------------------------------------- reading
    def get(self, batch_id: int) -> BatchRow | None:
        with self.db.read() as tx:
            row = tx.one("batch_get", id=batch_id)
            return None if row is None else self._rows(tx, [row])[0]

    def recent(self, *, open_only: bool = False, limit: int = 50) -> list[BatchRow]:
        with self.db.read() as tx:
            return self._rows(tx, tx.q("batch_list", open_only=open_only, limit=limit))

    def open(self) -> list[BatchRow]:
        return self.recent(open_only=True, limit=10_000)[::-1]

    def items(self, batch_id: int) -> list[ItemRow]:
        with self.db.read() as tx:
            return [_item(r) for r in tx.q("batch_items", batch_id=batch_id)]

    def chain(self, task_id: int, attempt: int) -> list[ItemRow]:
        """The answers of this attempt re-asked so far, round by round (not the answers
        themselves: the rows that hold them, with hash and usage)."""
        with self.db.read() as tx:
            rows = tx.q("batch_chain", task_id=task_id, attempt=attempt)
        return [
            ItemRow(
                0,
                r["batch_id"],
                task_id,
                attempt,
                r["round"],
                "",
                r["request_hash"],
                "reask",
                r["answer"],
                r["input_tokens"],
                r["output_tokens"],
                None,
                r["since"],
            )
            for r in rows
        ]

    def usage(self, batch_id: int) -> dict[str, tuple[int, int]]:
        """Input and output tokens of a batch's answers, per workflow."""
        with self.db.read() as tx:
            rows = tx.q("batch_usage", batch_id=batch_id)
        return {r["workflow"]: (int(r["input_tokens"]), int(r["output_tokens"])) for r in rows}

    def drop_chain(self, task_id: int, attempt: int) -> None:
        with self.db.tx() as tx:
            tx.x("batch_drop_chain", task_id=task_id, attempt=attempt)

    def pending(self, workflows: Sequence[str]) -> dict[str, tuple[int, float]]:
        """Claimable tasks per workflow: (how many, when the oldest last changed)."""
        with self.db.read() as tx:
            rows = tx.q("batch_pending", now=time.time(), workflows=list(workflows))
        return {r["workflow"]: (int(r["n"]), float(r["oldest"])) for r in rows}

    def costs(
        self, since: float, until: float, workflows: Sequence[str] | None = None
    ) -> list[Row]:
        """Calls answered through batches per actor over runs that finished in [since,
        until]: calls, batches, tokens, cost (at the batch rate)."""
        params = {"any_workflow": not workflows, "workflows": list(workflows or [])}
        with self.db.read() as tx:
            rows: list[Row] = tx.q("batch_costs", since=since, until=until, **params)
        return rows

    def _rows(self, tx: Tx, rows: Iterable[Row]) -> list[BatchRow]:
        rows = list(rows)
        counts: dict[int, dict[str, int]] = {int(r["id"]): {} for r in rows}
        if rows:
            for c in tx.q("batch_item_counts", ids=list(counts)):
                counts[int(c["batch_id"])][c["state"]] = int(c["n"])
        names = [f.name for f in fields(BatchRow) if f.name != "items"]
        return [BatchRow(**{n: r[n] for n in names}, items=counts[int(r["id"])]) for r in rows]

    # -------------------------------------------------------------------- polling
    def polled(self, batch_id: int, provider_status: str, succeeded: int, errored: int) -> None:
        with self.db.tx() as tx:
            tx.x(
                "batch_polled",
                id=batch_id,
                provider_status=provider_status,
                succeeded=succeeded,
                errored=errored,
                now=time.time(),
            )

    def finish(self, batch_id: int, status: str, error: str | None = None) -> bool:
        """An open batch ends ('ingested', 'expired', 'cancelled', 'failed')."""
        with self.db.tx() as tx:
            n: int = tx.x("batch_finish", id=batch_id, status=status, error=error, now=time.time())
        return n == 1

    # ------------------------------------------------------------------ ingestion
    def take(
        self, batch_id: int, owner: str, *, lease_s: float, limit: int = 200
    ) -> list[tuple[ItemRow, TaskRow]]:
        """Take up to `limit` submitted items and their tasks (`submitted` -> `running`
        under `owner`'s lease), in one transaction. An item another worker took is not
        seen; an item whose task is no longer submitted (retried by hand, say) is 'stale'."""
        with self.db.tx() as tx:
            now = Store.now(tx)
            items = [_item(r) for r in tx.q("batch_items_take", batch_id=batch_id, limit=limit)]
            if not items:
                return []
            rows = tx.q(
                "batch_tasks_take",
                ids=[i.task_id for i in items],
                owner=owner,
                lease_until=now + lease_s,
                now=now,
            )
            tasks = {int(r["id"]): _task(r) for r in rows}
            for item in items:
                if item.task_id not in tasks:
                    self._state(tx, item, "stale", error="the task left the batch")
        return [(i, tasks[i.task_id]) for i in items if i.task_id in tasks]

    def give_back(self, item: ItemRow, owner: str, state: str, error: str) -> bool:
        """A taken item without a usable answer: the task pending again (attempt not
        counted), the item `state` ('returned' or 'stale')."""
        with self.db.tx() as tx:
            if not self._state(tx, item, state, error=error):
                return False
            tx.x("release_task", id=item.task_id, owner=owner, now=time.time())
        return True

    def reask(
        self, item: ItemRow, owner: str, answer: str | None, usage: tuple[int, int], entry: Entry
    ) -> bool:
        """A taken item whose answer goes back as a re-ask in the next batch: the answer
        kept on the item ('reask'), the round's calls in history, the task pending again
        (attempt not counted: the next round is the same attempt)."""
        try:
            with self.db.tx() as tx:
                if not self._state(tx, item, "reask", answer=answer, usage=usage):
                    return False
                if tx.x("release_task", id=item.task_id, owner=owner, now=time.time()) != 1:
                    raise _Lost
                record(tx, entry)
        except _Lost:
            return False
        return True

    def done(
        self, tx: Tx, item: ItemRow, answer: str | None, usage: tuple[int, int] = (0, 0)
    ) -> None:
        """Mark a taken item ingested, inside the transaction that completes its task."""
        self._state(tx, item, "done", answer=answer, usage=usage)

    def done_now(self, item: ItemRow, answer: str | None, usage: tuple[int, int]) -> None:
        with self.db.tx() as tx:
            self.done(tx, item, answer, usage)

    def return_untaken(self, batch_id: int) -> int:
        """Every item of an ended batch still 'submitted' (never answered): its task back
        to pending, attempt not counted. Returns how many."""
        returned = 0
        for item in self.items(batch_id):
            if item.state != "submitted":
                continue
            with self.db.tx() as tx:
                if self._state(
                    tx, item, "returned", error="no answer in the batch", from_state="submitted"
                ):
                    tx.x(
                        "batch_task_return",
                        id=item.task_id,
                        from_status="submitted",
                        owner=None,
                        now=time.time(),
                    )
                    returned += 1
        return returned

    @staticmethod
    def _state(
        tx: Tx,
        item: ItemRow,
        state: str,
        *,
        answer: str | None = None,
        usage: tuple[int, int] = (0, 0),
        error: str | None = None,
        from_state: str = "ingesting",
    ) -> bool:
        return (
            tx.x(
                "batch_item_state",
                id=item.id,
                state=state,
                answer=answer,
                input_tokens=usage[0],
                output_tokens=usage[1],
                error=error,
                from_state=from_state,
            )
            == 1
        )


class _Lost(Exception):
    """The task's lease was gone: nothing of the re-ask is kept."""
