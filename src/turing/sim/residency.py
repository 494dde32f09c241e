"""Which models are loaded: K at once, like one small GPU.

Requests are admitted first come, first served. A request for a loaded model goes ahead
(unless someone earlier is waiting for a swap); one for an unloaded model waits until there
is a free slot or a loaded model with no in-flight request, evicts the least recently used
such model, and pays the swap. Runs on the server's event loop only; everything but the
wait is synchronous, so releasing a slot never needs an await (safe in cancelled code).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque


class Slot:
    __slots__ = ("inflight", "ready")

    def __init__(self) -> None:
        self.inflight = 0
        self.ready = asyncio.Event()


class Residency:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # 0 = no limit
        self.slots: OrderedDict[str, Slot] = OrderedDict()
        self._queue: deque[object] = deque()
        self._changed: asyncio.Event | None = None
        self.swaps = 0
        self.evictions = 0
        self.unloads = 0

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _full(self) -> bool:
        return bool(self.capacity) and len(self.slots) >= self.capacity

    def _admissible(self, model: str) -> bool:
        if model in self.slots or not self._full():
            return True
        return any(slot.inflight == 0 for slot in self.slots.values())

    async def acquire(self, model: str) -> tuple[Slot, bool]:
        """Admit one request for `model`: its slot, and whether the caller must load it."""
        ticket = object()
        self._queue.append(ticket)
        try:
            while not (self._queue[0] is ticket and self._admissible(model)):
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
        except BaseException:
            self._queue.remove(ticket)
            self._notify()
            raise
        self._queue.popleft()
        slot = self.slots.get(model)
        load = slot is None
        if slot is None:
            if self._full():
                victim = next(name for name, s in self.slots.items() if s.inflight == 0)
                del self.slots[victim]
                self.evictions += 1
            slot = self.slots[model] = Slot()
            self.swaps += 1
        else:
            self.slots.move_to_end(model)
        slot.inflight += 1
        self._notify()
        return slot, load

    def release(self, model: str, *, unload: bool = False) -> None:
        slot = self.slots.get(model)
        if slot is not None:
            slot.inflight -= 1
            if unload and slot.inflight == 0:
                del self.slots[model]
                self.unloads += 1
        self._notify()

    def release_idle(self, model: str) -> bool:
        """Unload `model` now if nothing is running on it (Ollama's keep_alive 0)."""
        slot = self.slots.get(model)
        if slot is None or slot.inflight:
            return False
        del self.slots[model]
        self.unloads += 1
        self._notify()
        return True

    def reset(self) -> None:
        """Unload idle models and zero the counters."""
        for name in [n for n, s in self.slots.items() if s.inflight == 0]:
            del self.slots[name]
        self.swaps = self.evictions = self.unloads = 0
        self._notify()

    def resident(self) -> list[str]:
        """Loaded models, least recently used first."""
        return list(self.slots)
