"""A bounded, thread-safe map that forgets the least recently used entry first, and its smallest case.

Two caches need the map: request vectors (``classify.embedding.QueryCache``, a repeated request skips
the encoder) and the detector's verdicts on long texts (``governance.verdicts``, a conversation's
pasted turns are scanned once). Both are read from the event loop and from worker threads.
:func:`remember_last` keeps one answer, for the text a function was last asked about: the
detector's steps ask several times about the same text object within one scan.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Concatenate, Generic, ParamSpec, TypeVar

__all__ = ["Lru", "remember_last"]

K = TypeVar("K")
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")


def remember_last(function: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R]:
    """``function`` with its answer for the last text kept, matched by identity (``is``), not equality:
    a hit costs no hashing of a long text. Any further arguments must follow from the text (they are
    not compared). Safe across threads: the pair is read and replaced in one step each."""
    last: list[tuple[str, R]] = []

    @functools.wraps(function)
    def remembering(text: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        remembered = last[0] if last else None
        if remembered is not None and remembered[0] is text:
            return remembered[1]
        answer = function(text, *args, **kwargs)
        last[:] = [(text, answer)]
        return answer

    return remembering


class Lru(Generic[K, V]):
    """At most ``size`` entries (0: keeps nothing); ``hits`` and ``misses`` count the lookups."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
