"""Embedding for the classifier: caches and batching around a :class:`~biorouter.classify.encoders.TextEncoder`.

Three levers, each measured in ``bench/`` before it was kept:

- **Utterance vectors on disk** (``<cache_dir>/embeddings/<fingerprint>.npz``), keyed by the
  encoder's fingerprint and each utterance's SHA-256: a restart embeds only the utterances that
  changed, so editing one line of ``utterances/*.txt`` costs one embedding, not 900.
- **Recent request vectors in memory** (an LRU keyed by the text's SHA-256, never the text):
  retries, repeated system prompts and agent loops that resend a question skip the encoder.
- **Micro-batching**: requests that arrive while the encoder is busy wait for the next call and
  share it; the call runs on one worker thread, so the event loop never blocks and the batch
  grows exactly as fast as load does (a lone request never waits for company). A request's text
  reaches the thread before :meth:`Embedder.submit_query` returns, so what its caller does next
  on the loop runs beside the embedding.

:func:`router_encoder` exposes the result as a semantic-router encoder (documents and queries
take the different paths above), and :func:`unit_vector_index` a semantic-router index that relies
on its vectors being unit length.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biorouter.classify.encoders import TextEncoder
from biorouter.files import replaced_atomically
from biorouter.lru import Lru

__all__ = ["DocumentCache", "Embedder", "QueryCache", "router_encoder", "unit_vector_index"]

log = logging.getLogger("biorouter.embedding")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class DocumentCache:
    """Utterance vectors of one encoder, persisted as one ``.npz`` file; unwritable means in-memory."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.path = folder / "embeddings" / f"{fingerprint}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
                self._vectors = {str(k): v for k, v in zip(keys, vectors, strict=True)}
        except Exception as e:  # a truncated or foreign file: start over, it is only a cache
            log.warning("ignoring unreadable embedding cache %s: %s", self.path, e)
            self._vectors = {}

    def _save(self) -> None:
        if not self._vectors:
            return
        keys = np.array(list(self._vectors), dtype="<U64")
        vectors = np.vstack(list(self._vectors.values()))
        try:
            with replaced_atomically(self.path) as partial:
                np.savez(partial, keys=keys, vectors=vectors)
        except OSError as e:
            log.warning(
                "cannot write the embedding cache %s (%s); utterances are embedded again next start", self.path, e
            )

    def embed(self, texts: Sequence[str], encode: Any) -> np.ndarray:
        """Vectors for ``texts``: cached ones as stored, the rest from ``encode`` (then saved)."""
        keys = [_key(text) for text in texts]
        missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in self._vectors}.items())
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            fresh = encode([text for _, text in missing])
            for (key, _), vector in zip(missing, fresh, strict=True):
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
            self._save()
        return np.vstack([self._vectors[key] for key in keys])


class QueryCache(Lru[str, np.ndarray]):
    """A thread-safe LRU of request vectors keyed by the text's SHA-256."""


@dataclass
class _Waiting:
    """Queries of one event loop waiting for the encoder, and whether an encoder call is running for it."""

    items: list[tuple[str, str, asyncio.Future[np.ndarray]]] = field(default_factory=list)
    running: bool = False


class Embedder:
    """A text encoder with the document cache, the query cache and the micro-batcher in front."""

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None, *, query_cache_size: int, batch_size: int) -> None:
        self.encoder = encoder
        self.fingerprint = encoder.fingerprint
        self.documents = DocumentCache(cache_dir, encoder.fingerprint) if cache_dir is not None else None
        self.queries = QueryCache(query_cache_size)
        self.batch_size = batch_size
        self.batches: list[int] = []  # sizes of recent encoder calls for queries (bench/tests read it)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="biorouter-encoder")
        self._waiting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiting] = weakref.WeakKeyDictionary()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.documents is None:
            return self.encoder.encode_documents(texts)
        return self.documents.embed(texts, self.encoder.encode_documents)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Synchronous: cached vectors, the rest in one encoder call on the calling thread."""
        keys = [_key(text) for text in texts]
        found = [self.queries.get(key) for key in keys]
        todo = [index for index, vector in enumerate(found) if vector is None]
        if todo:
            fresh = self.encoder.encode_queries([texts[index] for index in todo])
            for index, vector in zip(todo, fresh, strict=True):
                found[index] = vector
                self.queries.put(keys[index], vector)
        return np.vstack(found)  # type: ignore[arg-type]

    def submit_query(self, text: str) -> asyncio.Future[np.ndarray]:
        """One request's vector as a future; by the time this returns, the text is in the encoder thread.

        Synchronous on purpose: a caller that goes on with other work on the event loop (the lexical
        scores, the sensitivity scan) overlaps it with the embedding, with no loop turns to wait for.
        The text is encoded at once when the encoder is idle, or with the next call (in a batch)
        when it is busy. Cancelling the future drops the text from a batch not yet started.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        key = _key(text)
        cached = self.queries.get(key)
        if cached is not None:
            future.set_result(cached)
            return future
        waiting = self._waiting.setdefault(loop, _Waiting())
        waiting.items.append((key, text, future))
        if not waiting.running:
            self._start_batch(loop, waiting)
        return future

    async def aembed_query(self, text: str) -> np.ndarray:
        """One request's vector: from the cache, or from the next batched encoder call."""
        return await self.submit_query(text)

    def _start_batch(self, loop: asyncio.AbstractEventLoop, waiting: _Waiting) -> None:
        """Hand the next batch of live waiters to the encoder thread (on the loop's thread)."""
        while waiting.items:
            batch = waiting.items[: self.batch_size]
            del waiting.items[: self.batch_size]
            live = [item for item in batch if not item[2].done()]  # skip cancelled
            if live:
                break
        else:
            waiting.running = False
            return
        waiting.running = True
        self.batches = [*self.batches[-999:], len(live)]
        call = self._executor.submit(self.encoder.encode_queries, [text for _, text, _ in live])

        def finished(_: object) -> None:  # on the encoder thread: hand the outcome back to the loop
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                loop.call_soon_threadsafe(self._finish_batch, loop, waiting, live, call)

        call.add_done_callback(finished)

    def _finish_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        waiting: _Waiting,
        live: list[tuple[str, str, asyncio.Future[np.ndarray]]],
        call: concurrent.futures.Future[np.ndarray],
    ) -> None:
        """Give every waiter its vector (or the encoder's failure: the next batch retries), then start the next."""
        try:
            vectors = call.result()
        except BaseException as e:  # every waiter hears the encoder's failure
            for _, _, future in live:
                if not future.done():
                    future.set_exception(e if isinstance(e, Exception) else RuntimeError(f"encoder call ended: {e!r}"))
        else:
            for (key, _, future), vector in zip(live, vectors, strict=True):
                self.queries.put(key, vector)  # cached even when its requester gave up
                if not future.done():
                    future.set_result(vector)
        self._start_batch(loop, waiting)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def router_encoder(embedder: Embedder) -> Any:
    """A semantic-router DenseEncoder over ``embedder`` (documents cached on disk, queries batched)."""
    from pydantic import PrivateAttr
    from semantic_router.encoders import DenseEncoder
    from semantic_router.encoders.base import AsymmetricDenseMixin

    class EmbedderEncoder(AsymmetricDenseMixin, DenseEncoder):
        """Routes semantic-router's two paths to the embedder's two paths."""

        type: str = "biorouter"
        _embedder: Embedder = PrivateAttr()

        def __call__(self, docs: list[Any]) -> list[Any]:
            return list(self._embedder.embed_documents(docs))

        async def acall(self, docs: list[Any]) -> list[Any]:
            return await self.aencode_queries(docs)

        def encode_documents(self, docs: list[str]) -> list[Any]:
            return list(self._embedder.embed_documents(docs))

        def encode_queries(self, docs: list[str]) -> list[Any]:
            return list(self._embedder.embed_queries(docs))

        async def aencode_documents(self, docs: list[str]) -> list[Any]:
            return await asyncio.to_thread(self.encode_documents, docs)

        async def aencode_queries(self, docs: list[str]) -> list[Any]:
            return list(await asyncio.gather(*(self._embedder.aembed_query(doc) for doc in docs)))

    encoder = EmbedderEncoder(name=embedder.fingerprint)
    encoder._embedder = embedder
    return encoder


def unit_vector_index() -> Any:
    """A semantic-router LocalIndex that scores by a dot product with a float32 copy of its vectors.

    The stock index recomputes the norm of every stored utterance vector for each query (about
    0.4 ms for 900 utterances, on the proxy's event loop); the embedder's vectors are already unit
    length, so cosine similarity is the dot product. Filtered queries keep the stock path.

    The product is computed by ``np.einsum``, never by BLAS: above about 1,100 utterances OpenBLAS
    splits a matrix-vector product over threads, and on a busy 2-core machine waiting for those
    threads took 0.6 to 7 ms per query instead of 0.05 (measured at 1,464 utterances: the decision
    p50 tripled). einsum runs on the calling thread in about 0.1 ms for 1,500 utterances.
    """
    from semantic_router.index.local import LocalIndex
    from semantic_router.linear import top_scores

    class UnitVectorIndex(LocalIndex):
        _matrix: Any = None
        _source: Any = None

        def query(
            self,
            vector: np.ndarray,
            top_k: int = 5,
            route_filter: list[str] | None = None,
            sparse_vector: Any = None,
        ) -> tuple[np.ndarray, list[str]]:
            if route_filter is not None or self.index is None or self.routes is None:
                return super().query(vector, top_k, route_filter, sparse_vector)
            if self._source is not self.index:  # the stored vectors changed (utterances added or removed)
                self._matrix = np.ascontiguousarray(self.index, dtype=np.float32)
                self._source = self.index
            similarities = np.einsum("ij,j->i", self._matrix, np.asarray(vector, dtype=np.float32))
            scores, rows = top_scores(similarities, top_k)
            return scores, [self.routes[row] for row in rows]

    return UnitVectorIndex()
