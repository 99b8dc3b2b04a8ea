"""The classifier's embedding path: ONNX parity with PyTorch, the caches, and micro-batching.

All of it runs the real packaged encoder (ONNX Runtime) from the session's classifier; the one
wrapper here only counts calls, so the tests can tell a cache hit from an encoder call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from biorouter.classify.classifier import TaskClassifier
from biorouter.classify.embedding import DocumentCache, Embedder, QueryCache
from biorouter.classify.encoders import TextEncoder, packaged_minilm_path
from biorouter.classify.onnx_encoder import clip_tokens
from biorouter.settings import ClassifierSettings, Settings


class Counting:
    """The real encoder, counting calls and texts (and failing on demand)."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.fingerprint = inner.fingerprint
        self.calls: list[int] = []
        self.fail: Exception | None = None

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.inner.encode_documents(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.fail is not None:
            raise self.fail
        return self.inner.encode_queries(texts)


@pytest.fixture
def encoder(classifier: TaskClassifier) -> Counting:
    assert classifier.embedder is not None
    return Counting(classifier.embedder.encoder)


TEXTS = [
    "align paired-end reads to GRCh38 with bwa-mem2",
    "hi",
    "def f(x):\n    return x * 2\n" * 8,
    "Welche Gene sind in der Probe differentiell exprimiert?",
]


@pytest.fixture(scope="module")
def onnx_fp32(shipped_settings: Settings) -> TextEncoder:
    from biorouter.classify.onnx_encoder import OnnxTextEncoder

    settings = ClassifierSettings()
    return OnnxTextEncoder(
        Path(packaged_minilm_path()),
        shipped_settings.cache_path,
        threads=1,
        precision="fp32",
        max_query_tokens=settings.max_query_tokens,
        query_head_tokens=settings.query_head_tokens,
    )


def test_onnx_vectors_match_pytorch(onnx_fp32: TextEncoder) -> None:
    from biorouter.classify.encoders import SentenceTransformerEncoder

    torch = SentenceTransformerEncoder(packaged_minilm_path(), None)
    similarity = np.sum(onnx_fp32.encode_documents(TEXTS) * torch.encode_documents(TEXTS), axis=1)
    assert similarity.min() > 0.999, similarity


def test_the_default_int8_model_stays_close_to_fp32(classifier: TaskClassifier, onnx_fp32: TextEncoder) -> None:
    """Quantisation moves vectors a little (accuracy is checked by the eval guard), never far."""
    assert classifier.embedder is not None
    assert classifier.embedder.fingerprint.startswith("onnx-int8-")
    similarity = np.sum(classifier.embedder.encoder.encode_documents(TEXTS) * onnx_fp32.encode_documents(TEXTS), axis=1)
    assert similarity.min() > 0.9, similarity


def test_a_folder_that_is_not_a_model_fails_export_with_a_clear_error(tmp_path: Path) -> None:
    from biorouter.classify.onnx_export import ensure_exported
    from biorouter.errors import ClassifierError

    model = tmp_path / "not-a-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ClassifierError, match=r"exporting .*not-a-model to ONNX failed"):
        ensure_exported(model, tmp_path / "cache", "int8")


def test_onnx_runtime_needs_a_local_folder(tmp_path: Path) -> None:
    from biorouter.classify.encoders import build_text_encoder
    from biorouter.errors import ClassifierError
    from biorouter.settings import SentenceTransformerModel

    settings = ClassifierSettings(
        encoder=SentenceTransformerModel(kind="sentence-transformers", model="BAAI/bge-m3", runtime="onnx")
    )
    with pytest.raises(ClassifierError, match="needs the model as a local folder"):
        build_text_encoder(settings, tmp_path)


def test_long_queries_keep_their_head_and_tail() -> None:
    ids = [101, *range(1000, 1100), 102]
    special = [1] + [0] * 100 + [1]
    clipped = clip_tokens(ids, special, budget=12, head=4)
    assert clipped == [101, 1000, 1001, 1002, 1003, 1094, 1095, 1096, 1097, 1098, 1099, 102]
    assert clip_tokens(ids[:5], [*special[:4], 1], budget=12, head=4) == ids[:5]


async def test_the_query_cache_answers_a_repeated_request_without_the_encoder(encoder: Counting) -> None:
    embedder = Embedder(encoder, None, query_cache_size=8, batch_size=8)
    first = await embedder.aembed_query("count reads per gene with featureCounts")
    again = await embedder.aembed_query("count reads per gene with featureCounts")
    assert encoder.calls == [1]
    assert np.array_equal(first, again)
    embedder.close()


def test_query_cache_evicts_the_least_recently_used() -> None:
    cache = QueryCache(2)
    for key in ("a", "b"):
        cache.put(key, np.ones(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", np.ones(2))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


async def test_concurrent_requests_share_encoder_calls_and_get_their_own_vectors(encoder: Counting) -> None:
    embedder = Embedder(encoder, None, query_cache_size=0, batch_size=32)
    texts = [f"run DESeq2 on sample sheet number {index}" for index in range(24)]
    batched = await asyncio.gather(*(embedder.aembed_query(text) for text in texts))
    assert len(encoder.calls) < len(texts)  # the first call ran alone, the rest waited and shared
    assert sum(encoder.calls) == len(texts)
    single = encoder.inner.encode_queries(texts)
    assert np.allclose(np.vstack(batched), single, atol=1e-5)
    embedder.close()


async def test_an_encoder_failure_reaches_every_waiter_and_the_next_call_recovers(encoder: Counting) -> None:
    embedder = Embedder(encoder, None, query_cache_size=0, batch_size=32)
    encoder.fail = OSError("embeddings backend down")
    results = await asyncio.gather(
        *(embedder.aembed_query(f"text {index}") for index in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, OSError) for result in results)
    encoder.fail = None
    vector = await embedder.aembed_query("text 0")
    assert vector.shape == (384,)
    embedder.close()


async def test_a_cancelled_request_does_not_stall_the_others(encoder: Counting) -> None:
    embedder = Embedder(encoder, None, query_cache_size=0, batch_size=32)
    tasks = [asyncio.create_task(embedder.aembed_query(f"plot a volcano {index}")) for index in range(6)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert all(isinstance(result, np.ndarray) for index, result in enumerate(done) if index != 3)
    embedder.close()


async def test_a_submitted_text_is_in_the_encoder_thread_before_the_caller_yields(encoder: Counting) -> None:
    """What lets the scan of a request run beside its embedding: no loop turn is needed to start it."""
    embedder = Embedder(encoder, None, query_cache_size=8, batch_size=8)
    future = embedder.submit_query("align reads to GRCh38 with bwa-mem2")
    deadline = time.monotonic() + 10
    while not encoder.calls and time.monotonic() < deadline:
        time.sleep(0.001)  # noqa: ASYNC251 - blocking on purpose: the event loop must not turn
    assert encoder.calls == [1]
    vector = await future
    assert vector.shape == (384,)
    cached = embedder.submit_query("align reads to GRCh38 with bwa-mem2")
    assert cached.done()  # the cache answers at once
    assert np.array_equal(cached.result(), vector)
    embedder.close()


async def test_a_text_submitted_while_the_encoder_is_busy_rides_the_next_batch(encoder: Counting) -> None:
    embedder = Embedder(encoder, None, query_cache_size=0, batch_size=8)
    first = embedder.submit_query("call variants with DeepVariant")
    rest = [embedder.submit_query(f"annotate variants with VEP, batch {index}") for index in range(5)]
    await asyncio.gather(first, *rest)
    assert encoder.calls == [1, 5]
    embedder.close()


def test_utterance_vectors_persist_and_only_changed_lines_are_embedded(encoder: Counting, tmp_path: Path) -> None:
    lines = ["trim adapters with cutadapt", "call variants with GATK", "summarise a VCF"]
    first = DocumentCache(tmp_path, encoder.fingerprint).embed(lines, encoder.encode_documents)
    assert encoder.calls == [3]
    restarted = DocumentCache(tmp_path, encoder.fingerprint)  # a new process reads the file
    again = restarted.embed([*lines[:2], "annotate a VCF with VEP"], encoder.encode_documents)
    assert encoder.calls == [3, 1]
    assert np.array_equal(first[:2], again[:2])
    assert (restarted.hits, restarted.misses) == (2, 1)


def test_another_encoder_never_reads_these_vectors(encoder: Counting, tmp_path: Path) -> None:
    DocumentCache(tmp_path, encoder.fingerprint).embed(["call variants"], encoder.encode_documents)
    other = DocumentCache(tmp_path, "onnx-some-other-model")
    other.embed(["call variants"], encoder.encode_documents)
    assert other.misses == 1


def test_a_corrupt_cache_file_is_ignored_and_replaced(
    encoder: Counting, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DocumentCache(tmp_path, encoder.fingerprint)
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"not a numpy archive")
    with caplog.at_level(logging.WARNING):
        reread = DocumentCache(tmp_path, encoder.fingerprint)
    assert "ignoring unreadable embedding cache" in caplog.text
    reread.embed(["call variants"], encoder.encode_documents)
    assert DocumentCache(tmp_path, encoder.fingerprint).embed(["call variants"], encoder.encode_documents).shape == (
        1,
        384,
    )


def test_an_unwritable_cache_warns_and_still_embeds(
    encoder: Counting, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING):
        vectors = DocumentCache(blocked, encoder.fingerprint).embed(["call variants"], encoder.encode_documents)
    assert vectors.shape == (1, 384)
    assert "cannot write the embedding cache" in caplog.text


async def test_a_cold_cache_exports_the_model_and_classifies(tmp_path: Path) -> None:
    """A fresh machine: nothing cached; the first load exports to ONNX and embeds the utterances."""
    utterances = {"alignment": ["align reads to a reference genome"], "plotting": ["draw a heatmap of expression"]}
    classifier = TaskClassifier(utterances, ClassifierSettings(), cache_dir=tmp_path)
    await classifier.aload()
    assert any((tmp_path / "onnx").glob("*/model.int8.onnx"))
    assert any((tmp_path / "embeddings").glob("*.npz"))
    result = await classifier.aclassify("map my FASTQ reads onto hg38")
    assert result.task == "alignment"


def test_the_unit_vector_index_ranks_like_semantic_routers_own(classifier: TaskClassifier) -> None:
    from semantic_router.index.local import LocalIndex

    assert classifier.embedder is not None
    index = classifier._router.index  # type: ignore[union-attr]
    for text in TEXTS:
        vector = classifier.embedder.embed_queries([text])[0]
        fast_scores, fast_routes = index.query(vector, top_k=5)
        stock = LocalIndex()
        stock.add(embeddings=index.index.tolist(), routes=list(index.routes), utterances=list(index.utterances))
        stock_scores, stock_routes = stock.query(vector, top_k=5)  # semantic-router's own, norm-recomputing path
        assert list(fast_routes) == list(stock_routes)
        assert np.allclose(fast_scores, stock_scores, atol=1e-5)


async def test_the_lexical_scores_are_computed_while_the_encoder_runs(
    classifier: TaskClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blend's lexical part runs on the loop while the encoder thread embeds the request, not after it:
    on a long paste that is about 2 ms of the decision saved (``bench/decision_latency.py``)."""
    import time

    classifier.warm()  # fits the lexical model the blend uses
    assert classifier.embedder is not None
    assert classifier._lexical is not None
    encoder = classifier.embedder.encoder
    spans: dict[str, list[float]] = {"encoder": [], "lexical": []}

    class Timed:
        fingerprint = encoder.fingerprint

        def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
            return encoder.encode_documents(texts)

        def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
            started = time.perf_counter()
            try:
                return encoder.encode_queries(texts)
            finally:
                spans["encoder"] += [started, time.perf_counter()]

    lexical_probabilities = classifier._lexical.probabilities

    def timed_probabilities(text: str) -> dict[str, float]:
        spans["lexical"].append(time.perf_counter())
        return lexical_probabilities(text)

    monkeypatch.setattr(classifier.embedder, "encoder", Timed())
    monkeypatch.setattr(classifier._lexical, "probabilities", timed_probabilities)
    long_paste = "".join(f"    df_{i} = df.groupby(['sample', 'lane']).agg(reads=('n', 'sum'))\n" for i in range(80))
    answer = await classifier.aclassify(f"```\n{long_paste}```\nwhy is this slow? (lexical overlap test)")

    assert answer.source == "embedding"
    assert answer.task is not None
    _, encoder_ended = spans["encoder"]
    (lexical_started,) = spans["lexical"]
    assert lexical_started < encoder_ended, "the lexical scores waited for the encoder to finish"
