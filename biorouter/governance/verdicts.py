"""Verdicts on long texts already scanned, so a conversation's pasted turns are read once.

A chat client re-sends the whole conversation with every request: a 10,000-character log pasted
in the first turn is scanned again on the second, the tenth and on every fallback hop the guard
checks, 8-12 ms each time. The detector's verdict on one text is a pure function of the text and
the detector's rules, so it is kept here, per detector (a reload builds a new detector and starts
empty), keyed by a digest: no text is held in memory beyond the request that carried it.

Only verdicts that every layer reached are kept: a layer that failed (``detector:unavailable``) is
asked again next time, so a transient failure never sticks to a text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from biorouter.lru import Lru

__all__ = ["MIN_REMEMBERED_CHARS", "ChunkVerdict", "ChunkVerdicts"]

# Shorter texts scan in well under a millisecond: not worth a digest and a slot.
MIN_REMEMBERED_CHARS: Final = 1000


@dataclass
class ChunkVerdict:
    """What the layers found in one text: identifier and record rule names, and the people layer once it ran."""

    rules: tuple[str, ...]
    person: bool | None = None  # None until the people layer has read this text


class ChunkVerdicts:
    """Verdicts by text digest, at most ``size`` of them (least recently used out first; 0: none)."""

    def __init__(self, size: int = 2048) -> None:
        self._items: Lru[bytes, ChunkVerdict] = Lru(size)

    @staticmethod
    def key(text: str) -> bytes | None:
        """The digest a text is remembered by, or None for a text too short to remember."""
        if len(text) < MIN_REMEMBERED_CHARS:
            return None
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: bytes | None) -> ChunkVerdict | None:
        return None if key is None else self._items.get(key)

    def put(self, key: bytes | None, verdict: ChunkVerdict) -> None:
        if key is not None:
            self._items.put(key, verdict)

    def __len__(self) -> int:
        return len(self._items)
