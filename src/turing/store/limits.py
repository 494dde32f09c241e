"""The shared limits' rows (`turing_limits`, `turing_limit_grants`, `turing_limit_slots`):
the statements `turing.limits.Limiter` runs, typed. The limiter keeps the rate and slot
arithmetic; `LimitStore.tx()` gives it one write transaction to run them in.

On PostgreSQL `LimitTx.lock` takes the keys' lock rows in key order (`FOR UPDATE` after
`ORDER BY`), so two acquisitions of overlapping key sets cannot deadlock; SQLite serialises
writers anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from turing.store.db import Database, Tx


@dataclass(frozen=True)
class Usage:
    """What one key has in use now: for a rate key the amount granted in its window and the
    latest grant ever (`first_expiry` None); for a concurrency key the live slots and the
    earliest expiry (`latest` None)."""

    key: str
    used: int
    first_expiry: float | None
    latest: float | None


@dataclass(frozen=True)
class Grant:
    """A rate grant: `amount` is 1, or the tokens for a token limit."""

    key: str
    permit: str
    granted_at: float
    amount: int


@dataclass(frozen=True)
class Slot:
    """A held concurrency slot, alive until `expires_at` unless its holder renews it."""

    permit: str
    key: str
    holder: str
    expires_at: float


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class LimitTx:
    """The limiter's statements inside one write transaction (`LimitStore.tx()`)."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def lock(self, keys: Sequence[str]) -> int:
        """Lock the keys' lock rows (in key order); how many exist (fewer: one went missing)."""
        return len(self._tx.q("limit_lock", keys=list(keys)))

    def usage(
        self,
        rate_keys: Sequence[str],
        cutoffs: Sequence[float],
        slot_keys: Sequence[str],
        now: float,
    ) -> dict[str, Usage]:
        """Per key, one query: grants after each rate key's cutoff (parallel lists), live
        slots of each concurrency key."""
        rows = self._tx.q(
            "limit_usage",
            rate_keys=list(rate_keys),
            cutoffs=list(cutoffs),
            slot_keys=list(slot_keys),
            now=now,
        )
        return {
            str(r["key"]): Usage(
                str(r["key"]),
                int(r["used"]),
                _float_or_none(r["first_expiry"]),
                _float_or_none(r["latest"]),
            )
            for r in rows
        }

    def prune_grants(self, keys: Sequence[str], cutoffs: Sequence[float]) -> None:
        """Delete the grants at or before their key's cutoff (parallel lists)."""
        self._tx.x("limit_prune_grants", keys=list(keys), cutoffs=list(cutoffs))

    def prune_slots(self, keys: Sequence[str], now: float) -> None:
        """Delete the keys' slots that expired by `now`."""
        self._tx.x("limit_prune_slots", keys=list(keys), now=now)

    def frees_at(self, key: str, cutoff: float, excess: int) -> float | None:
        """When the earliest grant after `cutoff` whose leaving frees at least `excess` was
        granted (None if the grants in the window do not add up to it)."""
        row = self._tx.one("limit_grant_frees_at", key=key, cutoff=cutoff, excess=excess)
        return None if row is None else float(row["granted_at"])

    def insert_grants(self, grants: Sequence[Grant]) -> None:
        self._tx.many(
            "limit_insert_grant",
            [
                {"key": g.key, "permit": g.permit, "granted_at": g.granted_at, "amount": g.amount}
                for g in grants
            ],
        )

    def insert_slots(self, slots: Sequence[Slot]) -> None:
        self._tx.many(
            "limit_insert_slot",
            [
                {"permit": s.permit, "key": s.key, "holder": s.holder, "expires_at": s.expires_at}
                for s in slots
            ],
        )

    def settle(self, keys: Sequence[str], permit: str, granted_at: float, amount: int) -> None:
        """Set the amount of the permit's grants on these keys."""
        self._tx.x(
            "limit_settle", keys=list(keys), granted_at=granted_at, permit=permit, amount=amount
        )

    def release_slots(self, permit: str) -> int:
        return int(self._tx.x("limit_release_slots", permit=permit))


class LimitStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def tx(self) -> Iterator[LimitTx]:
        """One write transaction for several limiter statements."""
        with self.db.tx() as tx:
            yield LimitTx(tx)

    def ensure(self, keys: Sequence[str], now: float) -> None:
        """Create the lock rows of these keys (existing ones are left alone)."""
        with self.db.tx() as tx:
            tx.many("limit_ensure", [{"key": k, "now": now} for k in keys])

    def heartbeat(self, holder: str, now: float, expires_at: float) -> int:
        """Renew the holder's live slots until `expires_at`; how many."""
        with self.db.tx() as tx:
            return int(tx.x("limit_heartbeat", holder=holder, now=now, expires_at=expires_at))

    def release_holder(self, holder: str) -> int:
        """Delete every slot of the holder; how many."""
        with self.db.tx() as tx:
            return int(tx.x("limit_release_holder", holder=holder))
