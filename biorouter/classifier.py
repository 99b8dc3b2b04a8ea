"""Task classification: which task of the taxonomy a request's text belongs to.

A semantic-router ``IndexedRouter`` holds one route per task, indexed over the task's utterances
(``utterances/<task>.txt``) with the configured encoder. Every task is scored for every request
(the Decision shows all scores); choosing what to do with an unsure answer is the policy's job,
not the classifier's.

Loading the encoder and embedding the utterances takes seconds, so it happens lazily, once,
behind a lock, and off the event loop; utterance vectors are cached on disk so only a cold start
pays for them. Requests are embedded by :class:`~biorouter.embedding.Embedder` on a worker
thread, concurrent ones in one batch, so the proxy's loop keeps serving while they run.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from biorouter.errors import ClassifierError
from biorouter.settings import ClassifierSettings, Settings

if TYPE_CHECKING:
    from biorouter.embedding import Embedder
    from biorouter.encoders import TextEncoder

__all__ = ["Classification", "TaskClassifier", "query_text"]

USER_CACHE = Path.home() / ".cache" / "biorouter"
"""Where exported encoders go when a classifier is built without settings (no ``cache_dir``)."""


class Classification(BaseModel):
    """The classifier's answer: best task, its score, and every task's score."""

    model_config = ConfigDict(frozen=True)

    task: str | None  # None when there was nothing to classify
    confidence: float
    scores: Mapping[str, float]


def query_text(text: str, max_chars: int) -> str:
    """The parts of a long request that carry intent: its start and, mostly, its end.

    Requests either ask first ("Review this function: ...") or paste code or data first and ask
    last ("... why does this fail?"); a quarter of the budget goes to the start and the rest to the
    end. Lone surrogates (invalid UTF-8 that JSON allowed through) are replaced so the tokenizer
    never fails on them.
    """
    clean = text.encode("utf-8", "replace").decode("utf-8")
    if len(clean) <= max_chars:
        return clean
    head = max_chars // 4
    return clean[:head] + "\n" + clean[len(clean) - (max_chars - head - 1) :]


class TaskClassifier:
    """Scores request text against each task's utterances; thread- and task-safe."""

    def __init__(
        self,
        utterances: Mapping[str, list[str]],
        settings: ClassifierSettings | None = None,
        *,
        encoder: TextEncoder | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if not utterances:
            raise ClassifierError("no tasks to classify: the utterances folder is empty")
        self._utterances = {task: list(lines) for task, lines in utterances.items()}
        self._settings = settings or ClassifierSettings()
        self._encoder = encoder
        self._cache_dir = cache_dir
        self._router: Any | None = None
        self.embedder: Embedder | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, encoder: TextEncoder | None = None) -> TaskClassifier:
        """Over ``settings``' utterances folder with its classifier settings; nothing is embedded yet."""
        from biorouter.utterances import load_utterances

        utterances = load_utterances(settings.utterances_path, display_root=settings.home)
        return cls(utterances, settings.classifier, encoder=encoder, cache_dir=settings.cache_path)

    @property
    def keeps_text_local(self) -> bool:
        """Whether request text stays on premises when embedded (False for a cloud endpoint)."""
        encoder = self._settings.encoder
        return encoder.kind != "openai-compatible" or encoder.locality == "local"

    @property
    def tasks(self) -> list[str]:
        return sorted(self._utterances)

    @property
    def loaded(self) -> bool:
        return self._router is not None

    def load(self) -> None:
        """Build the encoder and the index once; later calls return at once."""
        if self._router is not None:
            return
        with self._lock:
            if self._router is not None:
                return
            from semantic_router import Route
            from semantic_router.routers import IndexedRouter

            from biorouter.embedding import Embedder, router_encoder, unit_vector_index
            from biorouter.encoders import build_text_encoder

            cache_dir = self._cache_dir
            encoder = self._encoder or build_text_encoder(self._settings, cache_dir or USER_CACHE)
            embedder = Embedder(
                encoder,
                cache_dir,
                query_cache_size=self._settings.query_cache_size,
                batch_size=self._settings.batch_size,
            )
            routes = [Route(name=task, utterances=lines) for task, lines in sorted(self._utterances.items())]
            try:
                self._router = IndexedRouter(
                    encoder=router_encoder(embedder),
                    index=unit_vector_index(),
                    routes=routes,
                    top_k=self._settings.top_k,
                    aggregation=self._settings.aggregation,
                )
            except Exception as e:  # the encoder failing on the utterances, a broken index
                embedder.close()
                if isinstance(e, ClassifierError):
                    raise
                raise ClassifierError(f"cannot build the task index: {e}") from e
            self.embedder = embedder

    async def aload(self) -> None:
        if self._router is None:
            await asyncio.to_thread(self.load)

    async def aclassify(self, text: str) -> Classification:
        """Score ``text`` against every task without blocking the event loop."""
        if not text.strip():
            return Classification(task=None, confidence=0.0, scores={})
        await self.aload()
        assert self._router is not None
        query = query_text(text, self._settings.max_query_chars)
        try:
            choices = await self._router.acall(query, limit=None, threshold=-math.inf)
        except ClassifierError:
            raise
        except Exception as e:
            raise ClassifierError(f"classification failed: {e}") from e
        # "sum" is a similarity-weighted vote of the top_k nearest utterances; dividing by top_k
        # keeps every score in 0..1 so profile thresholds mean the same whatever top_k is.
        scale = self._settings.top_k if self._settings.aggregation == "sum" else 1
        scores = {task: 0.0 for task in self._utterances}
        for choice in choices:
            if choice.name is not None and choice.confidence is not None:
                scores[choice.name] = round(float(choice.confidence) / scale, 6)
        best = max(scores, key=lambda task: (scores[task], task))
        return Classification(task=best, confidence=scores[best], scores=scores)

    def classify(self, text: str) -> Classification:
        """Synchronous :meth:`aclassify` for scripts and the CLI (not from inside a running loop)."""
        return asyncio.run(self.aclassify(text))
