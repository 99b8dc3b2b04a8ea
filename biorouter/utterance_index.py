"""The classifier's nearest-utterance index, without importing semantic-router at start-up.

The classifier only ever asks its index one thing: the ``top_k`` utterances nearest a unit
query vector, with their tasks. semantic-router's ``LocalIndex`` inside an ``IndexedRouter``
answered it, but importing ``semantic_router`` imports every encoder it ships (OpenAI, Azure,
Mistral, Cohere ... clients): 1.5-3 s of a proxy's start-up measured here, spent in the warm-up
thread while LiteLLM starts. :class:`UtteranceIndex` is the same computation (a dot product with
unit vectors, the top ``k`` by ``argpartition``, ascending like ``semantic_router.linear.top_scores``);
``tests/integration/test_embedding.py`` checks it ranks like semantic-router's own index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["UtteranceIndex", "UtteranceRouter"]


class UtteranceIndex:
    """Unit-length utterance vectors and their tasks; :meth:`query` scores by the dot product."""

    def __init__(self) -> None:
        self.index: np.ndarray | None = None  # one row per utterance (semantic-router's attribute names)
        self.routes: np.ndarray | None = None
        self.utterances: np.ndarray | None = None

    def add(self, embeddings: Sequence[Sequence[float]], routes: Sequence[str], utterances: Sequence[Any]) -> None:
        vectors = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
        names, texts = np.asarray(list(routes)), np.asarray(list(utterances), dtype=object)
        self.index = vectors if self.index is None else np.vstack([self.index, vectors])
        self.routes = names if self.routes is None else np.concatenate([self.routes, names])
        self.utterances = texts if self.utterances is None else np.concatenate([self.utterances, texts])

    def query(self, vector: np.ndarray, top_k: int = 5) -> tuple[np.ndarray, list[str]]:
        """The ``top_k`` similarities (ascending) and the tasks of those utterances."""
        if self.index is None or self.routes is None:
            raise ValueError("the utterance index is empty")
        similarities = self.index @ np.asarray(vector, dtype=np.float32)
        k = min(top_k, similarities.shape[0])
        rows = np.argpartition(similarities, -k)[-k:]
        scores = similarities[rows]
        order = np.argsort(scores)
        return scores[order], [str(self.routes[row]) for row in rows[order]]


class UtteranceRouter:
    """What the classifier keeps of a router: its index (the constructor takes IndexedRouter's arguments)."""

    def __init__(self, *, index: UtteranceIndex, **_: Any) -> None:
        self.index = index
