"""A sentence-transformers model run by ONNX Runtime: tokenise, transformer, pool, normalise.

Why not sentence-transformers' own ONNX backend: it needs ``optimum``, loads torch anyway, and
truncates every text to its first tokens. Here the tokenizer is the model's own fast tokenizer
(``tokenizer.json``), the pooling is read from the model folder (mean or CLS, as
sentence-transformers would), and long *queries* keep their head and their tail: a request that
pastes 4,000 tokens of code usually asks its question after it, and the encoder's cost grows
with every token it reads.

ONNX Runtime is told not to spin its worker threads: in the proxy they would otherwise burn the
CPU the event loop needs between requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from biorouter.classify.onnx_export import Precision, ensure_exported
from biorouter.classify.vectors import unit_rows
from biorouter.errors import ClassifierError

__all__ = ["OnnxTextEncoder", "clip_tokens"]

_SUB_BATCH = 16  # texts of similar length run together, so short ones are not padded to long ones


def clip_tokens(ids: list[int], special: list[int], budget: int, head: int) -> list[int]:
    """``ids`` cut to ``budget`` tokens: leading/trailing special tokens kept, then ``head`` content
    tokens from the start and the rest from the end (where a question after pasted text is)."""
    if len(ids) <= budget:
        return ids
    start = 0
    while start < len(ids) and special[start]:
        start += 1
    end = len(ids)
    while end > start and special[end - 1]:
        end -= 1
    room = max(1, budget - start - (len(ids) - end))
    first = min(head, room)
    last = room - first
    content = ids[start:end]
    kept = content[:first] + (content[len(content) - last :] if last else [])
    return ids[:start] + kept + ids[end:]


def _pooling(model_dir: Path) -> Literal["mean", "cls"]:
    config_path = model_dir / "1_Pooling" / "config.json"
    if not config_path.is_file():
        return "mean"
    config = json.loads(config_path.read_text())
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise ClassifierError(
        f"{config_path}: only mean or CLS pooling runs on ONNX; set classifier.encoder.runtime: torch for this model"
    )


def _max_tokens(model_dir: Path) -> int:
    config_path = model_dir / "sentence_bert_config.json"
    if config_path.is_file():
        value = json.loads(config_path.read_text()).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return 512


class OnnxTextEncoder:
    """L2-normalised embeddings from a model folder's exported transformer; thread-safe."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        threads: int,
        precision: Precision,
        max_query_tokens: int,
        query_head_tokens: int,
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        onnx_path, fingerprint = ensure_exported(model_dir, cache_dir, precision)
        # int8 quantises activations per call (one scale for the whole input tensor), so a text's
        # vector would depend on the texts batched with it: int8 runs one text per call, which
        # also measured no slower than padded batches (1.8 ms vs 2.3 ms per query in batches of 8).
        self._batch = 1 if precision == "int8" else _SUB_BATCH
        self.fingerprint = f"onnx-{precision}-{fingerprint}" + ("-single" if precision == "int8" else "")
        tokenizer_path = model_dir / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise ClassifierError(
                f"{model_dir} has no tokenizer.json (a fast tokenizer); set classifier.encoder.runtime: torch"
            )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or self._tokenizer.token_to_id("<pad>") or 0
        self._pooling = _pooling(model_dir)
        self.max_document_tokens = _max_tokens(model_dir)
        self.max_query_tokens = min(max_query_tokens, self.max_document_tokens)
        self._query_head_tokens = query_head_tokens

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # a truncated or foreign file in the cache
            raise ClassifierError(f"cannot load {onnx_path}: {e} (delete it to export again)") from e
        self._inputs = {item.name for item in self._session.get_inputs()}

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Example utterances: cut at the model's own limit, from the start."""
        return self._encode(texts, self.max_document_tokens, head=self.max_document_tokens)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Request text: cut to ``max_query_tokens``, keeping its head and its tail."""
        return self._encode(texts, self.max_query_tokens, head=self._query_head_tokens)

    def _encode(self, texts: Sequence[str], budget: int, *, head: int) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        rows = [clip_tokens(e.ids, e.special_tokens_mask, budget, head) for e in encodings]
        order = sorted(range(len(rows)), key=lambda index: len(rows[index]))
        vectors: list[np.ndarray | None] = [None] * len(rows)
        for chunk_start in range(0, len(order), self._batch):
            chunk = order[chunk_start : chunk_start + self._batch]
            for index, vector in zip(chunk, self._run([rows[index] for index in chunk]), strict=True):
                vectors[index] = vector
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack(vectors)  # type: ignore[arg-type]

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = row
            mask[index, : len(row)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[..., None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return unit_rows(pooled)
