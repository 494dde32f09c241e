"""A processing session: what lives exactly as long as one processing run.

    async with ProcessingSession(store, owner, lease_s=60, limiter=limiter) as session:
        await processor.drain(...)          # claims hold leases the session keeps alive

While it is open, a heartbeat thread extends the lease of every task `owner` holds, the
shared limiter's slots are kept alive, and the shared GPU hosts know this process; on every
exit path (normal end, an exception, a cancellation) the heartbeat stops, the limiter's slots
and the host registrations are released. `Orchestrator.aprocess`, `turing worker` and plan
execution all open one; a caller that already holds one passes it down instead of nesting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any, Protocol

from turing.leases import LeaseHeartbeat
from turing.store.store import Store

log = logging.getLogger(__name__)


class _KeepAlive(Protocol):
    async def keep_alive(self) -> None: ...
    def release_all(self) -> Any: ...


class _Releasable(Protocol):
    def release_all(self) -> Any: ...


class ProcessingSession:
    """Leases, limiter keep-alive and shared-host registration for one processing run."""

    def __init__(
        self,
        store: Store,
        owner: str,
        *,
        lease_s: float,
        heartbeat_s: float | None = None,
        limiter: _KeepAlive | None = None,
        shared_hosts: _Releasable | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError("the lease must be positive")
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self._limiter = limiter
        self._hosts = shared_hosts
        self._heartbeat: LeaseHeartbeat | None = None
        self._keep_alive: asyncio.Task[None] | None = None

    @property
    def beats(self) -> int:
        """Heartbeats that extended the leases so far."""
        return self._heartbeat.beats if self._heartbeat is not None else 0

    async def __aenter__(self) -> ProcessingSession:
        self._heartbeat = LeaseHeartbeat(self.store, self.owner, self.lease_s, self.heartbeat_s)
        self._heartbeat.start()
        if self._limiter is not None:
            self._keep_alive = asyncio.create_task(
                self._limiter.keep_alive(), name="turing-limits-keep-alive"
            )
        log.debug("session of %s opened (lease %.3gs)", self.owner, self.lease_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(asyncio.to_thread(self._close_sync_parts_first))
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keep_alive
            self._keep_alive = None
        for what, holder in (("limiter slots", self._limiter), ("shared hosts", self._hosts)):
            if holder is None:
                continue
            try:
                await asyncio.shield(asyncio.to_thread(holder.release_all))
            except Exception as error:  # they expire by themselves; say so, go on
                log.warning("releasing %s of %s failed: %s", what, self.owner, error)
        log.debug("session of %s closed", self.owner)

    def _close_sync_parts_first(self) -> None:
        """Stop the heartbeat (waits for a beat in progress: off the event loop)."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
