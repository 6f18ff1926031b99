"""A bounded queue that hands out the most urgent item first and lets keys take turns.

The notifier queues its notices here by severity and host, so one host's flood of warnings
cannot hold back another host's critical alert, nor another host's warning for long.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Items by rank (0 first), and within one rank round-robin across their keys."""

    def __init__(self, maxsize: int, ranks: int) -> None:
        self.maxsize = maxsize
        self._lanes: list[OrderedDict[str, deque[T]]] = [OrderedDict() for _ in range(ranks)]
        self._size = 0
        self._ready = asyncio.Event()

    def qsize(self) -> int:
        return self._size

    def put_nowait(self, item: T, rank: int, key: str) -> bool:
        """Queue ``item``; False if the queue is full."""
        if self._size >= self.maxsize:
            return False
        self._lanes[rank].setdefault(key, deque()).append(item)
        self._size += 1
        self._ready.set()
        return True

    async def get(self) -> T:
        while not self._size:
            self._ready.clear()
            await self._ready.wait()
        lane = next(lane for lane in self._lanes if lane)
        key, items = next(iter(lane.items()))
        item = items.popleft()
        if items:
            lane.move_to_end(key)  # the next item of this rank is another key's
        else:
            del lane[key]
        self._size -= 1
        return item
