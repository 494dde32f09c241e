"""`Limiter`: all-or-nothing acquisition of rate and concurrency limits through the database."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import inf

from turing.limits.spec import Concurrency, LimitError, LimitKey, Rate
from turing.store.db import Database
from turing.store.limits import Grant, LimitStore, LimitTx, Slot, Usage

log = logging.getLogger("turing.limits")

_MIN_SLEEP = 0.001  # never sleep less than this (no spinning on rounding)
_EPSILON = 0.0005  # wake just after a grant leaves its window, not just before
_PRUNE_EVERY = 1.0  # seconds between deletions of stale grants and slots of one key


class LimitTimeout(LimitError, TimeoutError):
    """`acquire` ran out of time; `wait` says which limit held it back last."""

    def __init__(self, wait: Wait, timeout: float) -> None:
        super().__init__(f"no permit within {timeout:g}s: {wait.reason}")
        self.wait = wait


class LimitUnsatisfiable(LimitError, ValueError):
    """The request can never be granted (more tokens than a token limit allows at all)."""


@dataclass(frozen=True)
class Permit:
    """Granted keys. Release it when the call is done (concurrency slots are held until then;
    rate grants stay in their window either way)."""

    id: str
    holder: str
    keys: tuple[LimitKey, ...]
    tokens: int
    granted_at: float


@dataclass(frozen=True)
class Wait:
    """Not granted; nothing was taken. `seconds`: for a rate limit, exactly how long until
    enough earlier grants leave the window; for a concurrency limit (freed whenever a holder
    releases) a polling hint, at most the time until the earliest slot expires. `key` is
    the limit with the longest wait, `blocked` every limit that refused."""

    seconds: float
    key: LimitKey
    blocked: tuple[LimitKey, ...]
    reason: str

    @property
    def on_release(self) -> bool:
        """A release (or a settle returning tokens) may end this wait early."""
        return all(not k.is_rate or k.is_tokens for k in self.blocked)


class Limiter:
    """Shared limits for one holder (one worker process; the id must be unique).

    Methods touching the database are synchronous; `acquire` runs them in a thread.
    """

    def __init__(
        self,
        db: Database,
        holder: str,
        clock: Callable[[], float] = time.time,
        *,
        slot_ttl: float = 60.0,
        poll_interval: float = 0.1,
        max_sleep: float = 2.0,
    ) -> None:
        if slot_ttl <= 0 or poll_interval <= 0 or max_sleep <= 0:
            raise ValueError("slot_ttl, poll_interval and max_sleep must be positive")
        self.db = db
        self.rows = LimitStore(db)
        self.holder = holder
        self.clock = clock
        self.slot_ttl = slot_ttl
        self.poll_interval = poll_interval
        self.max_sleep = max_sleep
        self._known: set[str] = set()
        self._pruned: dict[str, float] = {}
        self._signals: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        self._signals_lock = threading.Lock()
        self._rng = random.Random()

    # ------------------------------------------------------------------ acquire
    def try_acquire(self, keys: Sequence[LimitKey], *, tokens: int = 0) -> Permit | Wait:
        """Grant every key now, or none and say how long to wait (never blocks on a limit)."""
        unique = _unique(keys)
        _check(unique, tokens)
        if not unique:
            return Permit(uuid.uuid4().hex, self.holder, (), tokens, self.clock())
        for _ in range(3):
            try:
                return self._attempt(unique, tokens)
            except _Retry:
                continue
        return self._attempt(unique, tokens)

    def _attempt(self, unique: dict[str, LimitKey], tokens: int) -> Permit | Wait:
        permit_id = uuid.uuid4().hex
        ids = sorted(unique)
        self._ensure(ids)
        rates = [k for k in unique.values() if isinstance(k.limit, Rate)]
        slots = [k for k in unique.values() if isinstance(k.limit, Concurrency)]
        with self.rows.tx() as tx:
            if tx.lock(ids) != len(ids):  # a lock row went missing: create it again
                self._known.difference_update(ids)
                raise _Retry
            now = self.clock()
            usage = self._usage(tx, rates, slots, now)
            latest = max((u.latest for u in usage.values() if u.latest is not None), default=now)
            if latest > now:
                # another worker's clock runs ahead: record grants in order all the same
                now = latest
                usage = self._usage(tx, rates, slots, now)
            self._prune(tx, rates, slots, now)
            waits = self._rate_waits(tx, rates, usage, now, tokens)
            waits += self._slot_waits(slots, usage, now)
            if waits:
                return _combine(waits)
            if rates:
                tx.insert_grants(
                    [Grant(k.id, permit_id, now, tokens if k.is_tokens else 1) for k in rates]
                )
            if slots:
                expires = now + self.slot_ttl
                tx.insert_slots([Slot(permit_id, k.id, self.holder, expires) for k in slots])
        return Permit(permit_id, self.holder, tuple(unique[i] for i in ids), tokens, now)

    @staticmethod
    def _usage(
        tx: LimitTx, rates: list[LimitKey], slots: list[LimitKey], now: float
    ) -> dict[str, Usage]:
        """One query: what each key has in use now (grants in the window, live slots)."""
        return tx.usage(
            [k.id for k in rates],
            [now - _rate(k).period for k in rates],
            [k.id for k in slots],
            now,
        )

    def _prune(self, tx: LimitTx, rates: list[LimitKey], slots: list[LimitKey], now: float) -> None:
        """Delete grants that left their window and expired slots, per key at most every
        `_PRUNE_EVERY` seconds from this limiter (the usage query ignores them anyway)."""
        due = [k for k in rates + slots if now - self._pruned.get(k.id, -inf) >= _PRUNE_EVERY]
        if not due:
            return
        stale = [k for k in due if k.is_rate]
        if stale:
            cutoffs = [now - _rate(k).period for k in stale]
            tx.prune_grants([k.id for k in stale], cutoffs)
        expired = [k.id for k in due if not k.is_rate]
        if expired:
            tx.prune_slots(expired, now)
        for key in due:
            self._pruned[key.id] = now

    def _rate_waits(
        self, tx: LimitTx, rates: list[LimitKey], usage: dict[str, Usage], now: float, tokens: int
    ) -> list[tuple[float, LimitKey, str]]:
        waits = []
        for key in rates:
            rate = _rate(key)
            need = max(tokens, 1) if rate.tokens else 1
            row = usage.get(key.id)
            in_window = row.used if row else 0
            excess = in_window + need - rate.amount
            if excess <= 0:
                continue
            cutoff = now - rate.period
            first = tx.frees_at(key.id, cutoff, excess)
            # None only if the grants changed under the lock (they cannot): retry soon
            frees = first + rate.period if first is not None else now + _MIN_SLEEP
            what = f"{in_window} of {rate.amount}" + (" tokens" if rate.tokens else "")
            asked = f", asking {need}" if rate.tokens else ""
            waits.append((frees - now, key, f"{key}: {what} used in the window{asked}"))
        return waits

    def _slot_waits(
        self, slots: list[LimitKey], usage: dict[str, Usage], now: float
    ) -> list[tuple[float, LimitKey, str]]:
        waits = []
        for key in slots:
            row = usage.get(key.id)
            limit = _slots(key).slots
            if row is None or row.used < limit:
                continue
            expiry = row.first_expiry if row.first_expiry is not None else now
            hint = min(self.poll_interval, expiry - now)
            waits.append((hint, key, f"{key}: {row.used} of {limit} slots held"))
        return waits

    def _ensure(self, ids: list[str]) -> None:
        missing = [i for i in ids if i not in self._known]
        if not missing:
            return
        self.rows.ensure(missing, self.clock())
        self._known.update(missing)

    async def acquire(
        self, keys: Sequence[LimitKey], *, tokens: int = 0, timeout: float | None = None
    ) -> Permit:
        """Wait until every key is granted at once; raise `LimitTimeout` after `timeout`.

        Sleeps for the wait the database returned (bounded by `max_sleep`); a release in
        this process wakes waiters on concurrency and token limits at once. While waiting
        nothing is held. Database work runs in a thread, never on the event loop.
        """
        _check(_unique(keys), tokens)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        polls = 0
        while True:
            signal = self._signal(loop)
            result = await self._try_in_thread(keys, tokens)
            if isinstance(result, Permit):
                return result
            sleep = result.seconds + _EPSILON
            if result.on_release:
                # another process may release any time: poll, quickly at first
                polls += 1
                backoff = min(self.poll_interval, 0.005 * 2**polls)
                sleep = min(sleep, backoff * self._rng.uniform(0.8, 1.2))
            sleep = min(max(sleep, _MIN_SLEEP), self.max_sleep)
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    raise LimitTimeout(result, timeout or 0.0)
                sleep = min(sleep, left)
            if result.on_release:
                await asyncio.wait([signal], timeout=sleep)
            else:
                await asyncio.sleep(sleep)

    async def _try_in_thread(self, keys: Sequence[LimitKey], tokens: int) -> Permit | Wait:
        task = asyncio.ensure_future(asyncio.to_thread(self.try_acquire, keys, tokens=tokens))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # the thread may still grant: give back whatever it got
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Future[Permit | Wait]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        result = task.result()
        if isinstance(result, Permit):
            task.get_loop().run_in_executor(None, self.release, result)

    # ------------------------------------------------------------------ release
    def release(self, permit: Permit, *, tokens_used: int | None = None) -> None:
        """Free the permit's concurrency slots and, given `tokens_used`, correct its token
        grants (see `settle`). Releasing twice is harmless."""
        slots = [k for k in permit.keys if not k.is_rate]
        tokens = [k for k in permit.keys if k.is_tokens] if tokens_used is not None else []
        if not slots and not tokens:
            return
        with self.rows.tx() as tx:
            if tokens:
                self._settle(tx, permit, tokens, tokens_used or 0)
            if slots:
                tx.release_slots(permit.id)
        self._notify()

    def settle(self, permit: Permit, actual_tokens: int) -> None:
        """Replace the token estimate granted with the tokens the call really used; the
        window then counts the actual number (more delays later calls, fewer frees room)."""
        tokens = [k for k in permit.keys if k.is_tokens]
        if not tokens:
            return
        with self.rows.tx() as tx:
            self._settle(tx, permit, tokens, actual_tokens)
        if actual_tokens < permit.tokens:
            self._notify()

    def _settle(self, tx: LimitTx, permit: Permit, keys: list[LimitKey], actual: int) -> None:
        if actual < 0:
            raise ValueError(f"tokens used must not be negative (got {actual})")
        # no lock needed: an acquisition that read the old amount serialises before this
        tx.settle(sorted(k.id for k in keys), permit.id, permit.granted_at, actual)

    def heartbeat(self) -> int:
        """Renew every live slot this holder has for another `slot_ttl`; returns how many.
        Call it well within `slot_ttl` (e.g. every third of it). A slot that already
        expired is not revived: it may have been counted as free by another worker."""
        now = self.clock()
        return self.rows.heartbeat(self.holder, now, now + self.slot_ttl)

    async def keep_alive(self, interval: float | None = None) -> None:
        """Heartbeat every `interval` seconds (default a third of `slot_ttl`) until cancelled:
        `asyncio.create_task(limiter.keep_alive())` next to the work. A failed heartbeat is
        logged and retried at the next interval (slots survive one miss with the default)."""
        every = interval if interval is not None else self.slot_ttl / 3
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.heartbeat)
            except Exception:
                log.exception("limits: heartbeat of %s failed", self.holder)

    def release_all(self) -> int:
        """Free every slot of this holder (on shutdown); returns how many."""
        n = self.rows.release_holder(self.holder)
        self._notify()
        return n

    # ------------------------------------------------------------------ wake-ups
    def _signal(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        with self._signals_lock:
            for other in [lp for lp in self._signals if lp.is_closed()]:
                del self._signals[other]
            fut = self._signals.get(loop)
            if fut is None or fut.done():
                fut = loop.create_future()
                self._signals[loop] = fut
            return fut

    def _notify(self) -> None:
        with self._signals_lock:
            pending = [(lp, f) for lp, f in self._signals.items() if not f.done()]
        for loop, fut in pending:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_wake, fut)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Retry(Exception):
    """A lock row was missing (deleted under us); ensure it and try again."""


def _unique(keys: Sequence[LimitKey]) -> dict[str, LimitKey]:
    out: dict[str, LimitKey] = {}
    for key in keys:
        other = out.setdefault(key.id, key)
        if other.limit != key.limit:
            raise ValueError(f"two different limits for one key: {other} and {key}")
    return out


def _check(keys: dict[str, LimitKey], tokens: int) -> None:
    if tokens < 0:
        raise ValueError(f"tokens must not be negative (got {tokens})")
    for key in keys.values():
        if key.is_tokens and tokens > _rate(key).amount:
            raise LimitUnsatisfiable(f"{key}: asking {tokens} tokens at once can never be granted")


def _combine(waits: list[tuple[float, LimitKey, str]]) -> Wait:
    seconds, key, _ = max(waits, key=lambda w: w[0])
    return Wait(
        max(seconds, 0.0),
        key,
        tuple(k for _, k, _ in waits),
        "; ".join(reason for _, _, reason in waits),
    )


def _rate(key: LimitKey) -> Rate:
    assert isinstance(key.limit, Rate)
    return key.limit


def _slots(key: LimitKey) -> Concurrency:
    assert isinstance(key.limit, Concurrency)
    return key.limit
