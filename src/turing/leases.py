"""Lease heartbeats: a process extends the lease of every task it holds while it works on them.

A claim gives a task a lease (`lease_s`, default 600 s). Any process may reclaim a task whose
lease expired, which is how a dead worker's tasks come back; a live process working on a task
longer than the lease must therefore extend it. `LeaseHeartbeat` is a thread (so a busy event
loop cannot delay it) that runs `extend_leases` every `every_s`, a third of the lease by
default: every task the owner still holds gets `now + lease_s`, guarded by owner, so a task
another process reclaimed meanwhile is left alone (and the late result is discarded when the
owner tries to complete it).

The statement lives in `turing.store.leases.LeaseStore.extend`: on PostgreSQL it locks the
rows in id order and skips rows another transaction holds, so a heartbeat cannot deadlock
with claims or completions. A failed beat is logged as a warning on the `turing.leases`
logger ("heartbeat failed ...") and the thread keeps beating.

`turing worker` and `turing run` (`Orchestrator.aprocess`) both beat; see
`Orchestrator.hold_leases`, which lets nested users (the worker around each processing round)
share one thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from turing.store.leases import LeaseStore
from turing.store.store import Store

Log = Callable[[str], None]

logger = logging.getLogger(__name__)


def extend_leases(store: Store, owner: str, lease_s: float) -> int:
    """Push the lease of every task `owner` holds to now + `lease_s`; how many there were."""
    return LeaseStore(store.db).extend(owner, lease_s)


def heartbeat_interval(lease_s: float) -> float:
    """The default: a third of the lease (two beats may fail before the lease runs out)."""
    return max(0.05, lease_s / 3)


class LeaseHeartbeat(threading.Thread):
    """Extends `owner`'s leases every `every_s`, whatever the event loop is doing."""

    def __init__(
        self,
        store: Store,
        owner: str,
        lease_s: float,
        every_s: float | None = None,
        log: Log | None = None,
    ) -> None:
        super().__init__(name="turing-heartbeat", daemon=True)
        self.store = store
        self.owner = owner
        self.lease_s = lease_s
        self.every_s = every_s if every_s is not None else heartbeat_interval(lease_s)
        self.log = log  # besides the `turing.leases` logger, e.g. the CLI's console
        self.beats = 0
        self._halt = threading.Event()

    def run(self) -> None:
        self._tell("register", lambda: LeaseStore(self.store.db).register(self.owner, self.lease_s))
        while not self._halt.wait(self.every_s):
            try:
                extend_leases(self.store, self.owner, self.lease_s)
                self.beats += 1
            except Exception as exc:  # keep beating: the database may come back
                message = f"heartbeat failed ({type(exc).__name__}: {exc})"
                logger.warning("%s; owner %s keeps beating", message, self.owner)
                if self.log is not None:
                    self.log(message)
        # in this thread, so a stop never waits on a database that stopped answering
        self._tell("forget", lambda: LeaseStore(self.store.db).forget(self.owner))

    def stop(self) -> None:
        """Stop beating and wait for a beat in progress to end."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=max(5.0, self.every_s))

    def _tell(self, what: str, do: Callable[[], None]) -> None:
        """Register or forget this process as a live worker (the dashboard shows them);
        a failure is only logged: leases never depend on it."""
        try:
            do()
        except Exception as exc:
            logger.warning("could not %s worker %s (%s: %s)", what, self.owner,
                           type(exc).__name__, exc)  # fmt: skip
