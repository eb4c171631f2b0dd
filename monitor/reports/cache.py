"""A least-recently-used cache bounded by bytes.

Reports of an evaluated window never change, so they are cached by (kind, model, window); the bound
is in bytes because an Evidently page weighs about 4 MB while a summary weighs a few kB.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

__all__ = ["ByteLRU"]


class ByteLRU(Generic[V]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        """Insert (or refresh) `key`; an item larger than the whole cache is not kept."""
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old[1]
        if size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.used += size
        while self.used > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self.used -= evicted
