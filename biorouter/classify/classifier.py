"""Task classification: which task of the taxonomy a request's text belongs to.

A semantic-router ``IndexedRouter`` holds one route per task, indexed over the task's utterances
(``utterances/<task>.txt``) embedded with the configured encoder. A request's score per task blends
the vote of its nearest utterances with a small softmax-regression head trained on the utterance
vectors (see :class:`TaskClassifier`). Every task is scored for every request (the Decision shows
all scores); choosing what to do with an unsure answer is the policy's job, not the classifier's.
When the encoder is down, :mod:`biorouter.classify.lexical` classifies by words instead (degraded mode).

Loading the encoder and embedding the utterances takes seconds, so it happens lazily, once,
behind a lock, and off the event loop; utterance vectors are cached on disk so only a cold start
pays for them. Requests are embedded by :class:`~biorouter.classify.embedding.Embedder` on a worker
thread, concurrent ones in one batch, so the proxy's loop keeps serving while they run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from biorouter import metrics
from biorouter.classify.ask import ask_text
from biorouter.classify.lexical import LexicalClassifier
from biorouter.classify.softmax import cached, fit_softmax, softmax
from biorouter.errors import ClassifierError
from biorouter.settings import ClassifierSettings, Settings

if TYPE_CHECKING:
    from biorouter.classify.embedding import Embedder
    from biorouter.classify.encoders import TextEncoder

__all__ = ["Classification", "FallbackCause", "TaskClassifier", "query_text"]

log = logging.getLogger("biorouter.classifier")

USER_CACHE = Path.home() / ".cache" / "biorouter"
"""Where exported encoders go when a classifier is built without settings (no ``cache_dir``)."""


FallbackCause = Literal["load", "request"]
"""Why the lexical fallback answered: the encoder never loaded, or it failed on this request."""


class Classification(BaseModel):
    """The classifier's answer: best task, its score, and every task's score."""

    model_config = ConfigDict(frozen=True)

    task: str | None  # None when there was nothing to classify
    confidence: float
    scores: Mapping[str, float]
    source: Literal["embedding", "lexical"] = "embedding"  # which classifier answered
    fallback_reason: str | None = None  # why the lexical fallback answered instead of the embeddings


def query_text(text: str, max_chars: int, *, fold_pasted: bool = True) -> str:
    """The parts of a long request that carry intent: its start and, mostly, its end, pastes folded.

    Requests either ask first ("Review this function: ...") or paste code or data first and ask
    last ("... why does this fail?"); a quarter of the budget goes to the start and the rest to the
    end. Then, with ``fold_pasted``, runs of pasted code, rows and log lines shrink to one word naming
    their kind, so the ask is what the encoder reads (:func:`biorouter.classify.ask.ask_text`). Lone
    surrogates (invalid UTF-8 that JSON allowed through) are replaced so the tokenizer never fails on them.
    """
    clean = text.encode("utf-8", "replace").decode("utf-8")
    if len(clean) > max_chars:
        head = max_chars // 4
        clean = clean[:head] + "\n" + clean[len(clean) - (max_chars - head - 1) :]
    return ask_text(clean) if fold_pasted else clean


class TaskClassifier:
    """Scores request text against each task's utterances; thread- and task-safe.

    A task's score blends two views of the request's embedding: the similarity-weighted vote of
    its ``top_k`` nearest utterances (semantic-router's index; divided by ``top_k`` so it stays in
    0..1), and the probability of a softmax-regression head trained at load on the utterance
    embeddings (``head_weight``). The vote is precise near the utterances; the head generalises
    to phrasings no utterance is close to (measured: +3 points of accuracy on external prompts).
    The blend is normalised by its weights, so every score stays in 0..1.

    When the encoder cannot load, or fails on a request, and ``fallback`` is ``lexical``, the
    request is classified by :class:`~biorouter.classify.lexical.LexicalClassifier` instead: still
    routed by task, marked ``source="lexical"``, counted in the metrics. A failed load is tried
    again ``retry_after_s`` later in the background, so requests never wait for the retry; after
    a failed request the encoder is left alone for ``retry_after_s`` (an endpoint that hangs
    would otherwise cost every request its timeout), then the next request tries it again.
    """

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
        self._head: tuple[np.ndarray, np.ndarray] | None = None
        self._offset: np.ndarray | None = None  # subtracted from every vector before comparing
        self.embedder: Embedder | None = None
        self._lock = threading.Lock()
        # Degraded mode: the lexical model (built on first need), the last load failure and when.
        self._lexical: LexicalClassifier | None = None
        self._lexical_lock = threading.Lock()
        self._attempt_lock = threading.Lock()
        self.load_error: str | None = None
        self._failed_at = -math.inf
        self._retrying = False
        self._degraded = False  # whether the last answer came from the fallback (for the gauge)
        # The encoder failed on a request: skip it until then (a hung endpoint must not cost every
        # request its timeout), and why.
        self._skip_encoder_until = -math.inf
        self._request_error = ""

    @classmethod
    def from_settings(cls, settings: Settings, *, encoder: TextEncoder | None = None) -> TaskClassifier:
        """Over ``settings``' utterances folder with its classifier settings; nothing is embedded yet."""
        from biorouter.classify.utterances import load_utterances

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

    @property
    def degraded(self) -> bool:
        """Whether the lexical fallback gave the last answer (the encoder is down or failing)."""
        return self._degraded

    def load(self) -> None:
        """Build the encoder, the index and the head once; later calls return at once.

        Raises :class:`ClassifierError` when the encoder cannot be built or fails on the
        utterances (whatever ``fallback`` says: callers such as ``biorouter prepare`` must hear it).
        """
        if self._router is not None:
            return
        with self._lock:
            if self._router is not None:
                return
            from semantic_router.routers import IndexedRouter

            from biorouter.classify.embedding import Embedder, router_encoder, unit_vector_index
            from biorouter.classify.encoders import build_text_encoder

            cache_dir = self._cache_dir
            encoder = self._encoder or build_text_encoder(self._settings, cache_dir or USER_CACHE)
            embedder = Embedder(
                encoder,
                cache_dir,
                query_cache_size=self._settings.query_cache_size,
                batch_size=self._settings.batch_size,
            )
            try:
                router, offset, head = self._build(embedder, IndexedRouter, router_encoder, unit_vector_index)
            except Exception as e:  # the encoder failing on the utterances, a broken index
                embedder.close()
                if isinstance(e, ClassifierError):
                    raise
                raise ClassifierError(f"cannot build the task index: {e}") from e
            self._offset = offset
            self._head = head
            self.embedder = embedder
            self._router = router

    def _build(
        self, embedder: Embedder, router_class: Any, router_encoder: Any, unit_vector_index: Any
    ) -> tuple[Any, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The index of (centred) utterance vectors, the offset queries get too, and the head.

        Sentence embeddings share a large common direction (every text looks somewhat alike), so
        cosine similarities crowd together; subtracting the mean utterance vector before
        normalising spreads them (measured: +1.6 points for the vote alone, +1.2 blended, on
        external prompts). The index is filled with these vectors directly, so the router never
        embeds utterances itself; queries must be shifted the same way (see ``_embedding_answer``),
        which is why :meth:`aclassify` queries the index, not ``router.acall``.
        """
        tasks = self.tasks
        texts = [text for task in tasks for text in self._utterances[task]]
        labels = [task for task in tasks for _ in self._utterances[task]]
        raw = np.asarray(embedder.embed_documents(texts), dtype=np.float32)  # disk-cached per utterance
        offset = raw.mean(axis=0) if self._settings.centre_vectors else np.zeros(raw.shape[1], dtype=np.float32)
        vectors = _unit(raw - offset)
        index = unit_vector_index()
        index.add(embeddings=vectors.tolist(), routes=labels, utterances=texts)
        router = router_class(
            encoder=router_encoder(embedder),
            index=index,
            routes=[],  # read back from the filled index
            top_k=self._settings.top_k,
            aggregation=self._settings.aggregation,
        )
        head = None
        if self._settings.head_weight > 0:
            head = self._train_head(vectors, np.array([tasks.index(label) for label in labels]))
        return router, offset, head

    def _train_head(self, vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Softmax regression over the utterance vectors.

        C = 1 and 100 Adam steps measured best of C in {0.5, 1, 2, 3, 10, 100} on the project's own
        held-out prompts and the external set; more steps changed nothing.
        """
        key = (vectors.tobytes(), labels.astype(np.int64).tobytes(), b"head C=1 steps=100 rate=0.1")
        return cached(  # deterministic: a restart with the same utterance vectors loads it (biorouter.classify.softmax)
            self._cache_dir,
            key,
            lambda: fit_softmax(
                lambda w: vectors @ w,
                lambda g: vectors.T @ g,
                labels,
                classes=len(self.tasks),
                n_features=vectors.shape[1],
                regularisation=1.0,
                steps=100,
                rate=0.1,
            ),
        )

    async def aload(self) -> None:
        if self._router is None:
            await asyncio.to_thread(self.load)

    def begin(self, text: str) -> asyncio.Future[Classification]:
        """:meth:`aclassify` as a future, with the text already in the encoder thread when this returns.

        For callers with other work to do on the event loop meanwhile (the request's sensitivity
        scan): it runs beside the embedding with nothing to wait for first. Only a classifier
        with a local encoder should be begun before a scan (the text reaches the encoder at once).
        """
        query, embedding = self._prepare(text)
        return asyncio.ensure_future(self._classify(query, embedding))

    async def aclassify(self, text: str) -> Classification:
        """Score ``text`` against every task without blocking the event loop.

        Raises :class:`ClassifierError` only when the encoder fails and ``fallback`` is ``none``.
        """
        query, embedding = self._prepare(text)
        return await self._classify(query, embedding)

    def _prepare(self, text: str) -> tuple[str | None, asyncio.Future[np.ndarray] | None]:
        """The query text (None for a blank one) and, when the encoder is up and trusted, its embedding under way."""
        if not text.strip():
            return None, None
        query = query_text(text, self._settings.max_query_chars, fold_pasted=self._settings.fold_pasted)
        if self._router is None or self.embedder is None or self._skipping_encoder():
            return query, None
        return query, self.embedder.submit_query(query)

    def _skipping_encoder(self) -> bool:
        return self._settings.fallback == "lexical" and time.monotonic() < self._skip_encoder_until

    async def _classify(self, query: str | None, embedding: asyncio.Future[np.ndarray] | None) -> Classification:
        """``embedding`` is under way only when the encoder was up and trusted at :meth:`_prepare`; then
        :meth:`_embedding_answer` takes it (and cancels it if the request ends first)."""
        if query is None:
            return Classification(task=None, confidence=0.0, scores={})
        if self._router is None:
            if self._settings.fallback == "none":
                await self.aload()
            else:
                error = await self._ensure_loaded()
                if error is not None:
                    return await self._lexical_answer(query, f"encoder unavailable: {error}", "load")
        elif embedding is None and self._skipping_encoder():
            reason = f"encoder failed on a recent request, next try within {self._settings.retry_after_s:g} s"
            return await self._lexical_answer(query, f"{reason}: {self._request_error}", "request")
        try:
            answer = await self._embedding_answer(query, embedding)
        except Exception as e:
            failure = e if isinstance(e, ClassifierError) else ClassifierError(f"classification failed: {e}")
            if self._settings.fallback == "none":
                raise failure from e
            self._request_error = _without_body(str(failure))
            self._skip_encoder_until = time.monotonic() + self._settings.retry_after_s
            log.warning(
                "biorouter classifier: the encoder failed on a request (%s); the lexical fallback answers for "
                "the next %g s",
                self._request_error,
                self._settings.retry_after_s,
            )
            return await self._lexical_answer(query, f"encoder failed on the request: {self._request_error}", "request")
        if self._degraded:
            self._degraded = False
            metrics.record_degraded("classifier", False)
        return answer

    def classify(self, text: str) -> Classification:
        """Synchronous :meth:`aclassify` for scripts and the CLI (not from inside a running loop)."""
        return asyncio.run(self.aclassify(text))

    async def query_vector(self, text: str) -> np.ndarray | None:
        """The request's embedding as :meth:`aclassify` computed it (a query-cache hit after it), or None.

        None when the encoder is not loaded or is being skipped after a failure: callers (the
        complexity estimate) then do without, and never wait on a failing encoder.
        """
        if self.embedder is None or time.monotonic() < self._skip_encoder_until or not text.strip():
            return None
        return await self.embedder.aembed_query(
            query_text(text, self._settings.max_query_chars, fold_pasted=self._settings.fold_pasted)
        )

    async def _embedding_answer(self, query: str, embedding: asyncio.Future[np.ndarray] | None) -> Classification:
        assert self._router is not None
        assert self.embedder is not None
        assert self._offset is not None
        if embedding is None:  # the encoder has just loaded: hand the text over now
            embedding = self.embedder.submit_query(query)
        # The encoder runs in its own thread: the lexical scores are computed on this one meanwhile
        # (0.1-0.4 ms per request, up to 2 ms for long prose, otherwise added after the embedding).
        try:
            lexical_scores = (
                (await self._lexical_model()).probabilities(query) if self._settings.lexical_weight > 0 else None
            )
            raw = await embedding
        finally:
            embedding.cancel()  # a no-op once done; a cancelled request leaves no text queued
        vector = _unit(np.asarray(raw, dtype=np.float32) - self._offset)
        top_k = self._settings.top_k
        similarities, names = self._router.index.query(vector=vector, top_k=top_k)
        votes: dict[str, list[float]] = {}
        for name, similarity in zip(names, similarities, strict=True):
            votes.setdefault(name, []).append(float(similarity))
        aggregate = _AGGREGATIONS[self._settings.aggregation]
        # "sum" is a similarity-weighted vote of the top_k nearest utterances; dividing by top_k
        # keeps every score in 0..1 so profile thresholds mean the same whatever top_k is.
        scale = top_k if self._settings.aggregation == "sum" else 1
        # Centred similarities can in principle be negative (a text unlike every utterance): never below 0.
        vote = {task: max(0.0, aggregate(votes[task]) / scale) if task in votes else 0.0 for task in self._utterances}
        parts: list[tuple[float, Mapping[str, float]]] = [(1.0, vote)]
        if self._head is not None:
            weights, bias = self._head
            probs = softmax(vector @ weights + bias)
            parts.append((self._settings.head_weight, dict(zip(self.tasks, probs.tolist(), strict=True))))
        if lexical_scores is not None:
            parts.append((self._settings.lexical_weight, lexical_scores))
        return _blended(parts, self._utterances)

    async def _ensure_loaded(self) -> str | None:
        """Load (the first time, waiting for it), or retry in the background; the load error, if any."""
        if self._router is not None:
            return None
        if self.load_error is None:  # never tried: requests wait for the first load, as without a fallback
            await asyncio.to_thread(self._attempt_load)
        elif time.monotonic() - self._failed_at >= self._settings.retry_after_s:
            self._retry_in_background()
        return None if self._router is not None else self.load_error

    def _attempt_load(self) -> None:
        """One load attempt: concurrent first requests share it, and a recent failure is not repeated."""
        with self._attempt_lock:
            if self._router is not None:
                return
            if self.load_error is not None and time.monotonic() - self._failed_at < self._settings.retry_after_s:
                return
            try:
                self.load()
            except Exception as e:  # anything the encoder raises: the fallback takes over
                self.load_error = str(e) or type(e).__name__
                self._failed_at = time.monotonic()
                log.warning(
                    "biorouter classifier: encoder unavailable (%s); classifying with the lexical fallback, "
                    "retrying in %g s",
                    self.load_error,
                    self._settings.retry_after_s,
                )
            else:
                if self.load_error is not None:
                    log.info("biorouter classifier: encoder loaded after an earlier failure; embeddings again")
                self.load_error = None

    def _retry_in_background(self) -> None:
        with self._attempt_lock:
            if self._retrying:
                return
            self._retrying = True

        def attempt() -> None:
            try:
                self._attempt_load()
            finally:
                self._retrying = False

        threading.Thread(target=attempt, name="biorouter-classifier-retry", daemon=True).start()

    async def _lexical_model(self) -> LexicalClassifier:
        if self._lexical is None:
            await asyncio.to_thread(self._build_lexical)
        assert self._lexical is not None
        return self._lexical

    def warm(self) -> None:
        """:meth:`load`, and fit the lexical model the blend (or the fallback) uses, so no request waits for it."""
        self.load()
        if self._settings.lexical_weight > 0 or self._settings.fallback == "lexical":
            self._build_lexical()

    def _build_lexical(self) -> None:
        with self._lexical_lock:
            if self._lexical is None:
                self._lexical = LexicalClassifier.fit(self._utterances, cache_dir=self._cache_dir)

    async def _lexical_answer(self, query: str, reason: str, cause: FallbackCause) -> Classification:
        lexical = await self._lexical_model()
        metrics.record_classifier_fallback(cause)
        if not self._degraded:
            self._degraded = True
            metrics.record_degraded("classifier", True)
        answer = _blended([(1.0, lexical.probabilities(query))], self._utterances)
        return answer.model_copy(update={"source": "lexical", "fallback_reason": reason})


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Vectors (or one vector) scaled to length 1 along the last axis."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    result: np.ndarray = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
    return result


_HTTP_BODY = re.compile(r"(?<=HTTP \d{3}): .*", re.DOTALL)


def _without_body(error: str) -> str:
    """An encoder failure without the server's response body, which may echo the request text.

    The Decision never holds the prompt; an endpoint's error body ("input too long: <your text>")
    could smuggle it into the reasons, headers and logs, so only the status line is kept.
    """
    return _HTTP_BODY.sub("", error)[:300]


_AGGREGATIONS: dict[str, Callable[[list[float]], float]] = {
    "sum": sum,
    "max": max,
    "mean": lambda values: sum(values) / len(values),
}


def _blended(parts: list[tuple[float, Mapping[str, float]]], tasks: Mapping[str, object]) -> Classification:
    """The weighted mean of per-task scores (each part in 0..1, so the blend is too), best task first."""
    total = sum(weight for weight, _ in parts)
    scores = {task: round(sum(weight * part.get(task, 0.0) for weight, part in parts) / total, 6) for task in tasks}
    best = max(scores, key=lambda task: (scores[task], task))
    return Classification(task=best, confidence=scores[best], scores=scores)
