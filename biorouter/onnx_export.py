"""One-time export of a sentence-transformers model to ONNX, cached on disk.

The classifier runs its encoder with ONNX Runtime: on this project's 2-core CPUs a short query
embeds about three times faster than through PyTorch, and a process that finds the exported
model in the cache never imports torch at all (seconds off every proxy start). The export
itself needs torch and transformers, which sentence-transformers already brings, and happens
once per model: the first load writes ``<cache>/onnx/<fingerprint>/model.onnx`` atomically,
so replicas starting together at worst export twice, never read half a file.

Only the transformer runs in ONNX; pooling and normalisation are a few numpy lines in
:mod:`biorouter.onnx_encoder`, read from the model folder's sentence-transformers config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

from biorouter.errors import ClassifierError

__all__ = ["ONNX_FILE", "export_transformer", "model_fingerprint"]

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_OPSET = 17


def model_fingerprint(model_dir: Path) -> str:
    """A short id of a model folder's content: its config, tokenizer and weights (by size and mtime).

    Reading 90 MB-2 GB of weights on every start would cost more than it guards against, so
    weights count by size and modification time; config and tokenizer files by content.
    """
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json"):
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for name in _WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def export_transformer(model_dir: Path, target: Path) -> Path:
    """Write ``model_dir``'s transformer as ONNX to ``target`` (atomically) and return ``target``.

    Inputs are ``input_ids``, ``attention_mask`` and (for BERT-like models) ``token_type_ids``,
    with dynamic batch and sequence axes; the output is the last hidden state.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as e:  # pragma: no cover - sentence-transformers brings both
        raise ClassifierError(f"exporting the encoder to ONNX needs torch and transformers: {e}") from e

    try:
        model = AutoModel.from_pretrained(str(model_dir)).eval()
    except Exception as e:
        raise ClassifierError(f"cannot load the transformer in {model_dir} for ONNX export: {e}") from e
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    with_token_types = int(config.get("type_vocab_size", 0) or 0) > 1

    class LastHiddenState(torch.nn.Module):
        """Keyword-only call of the transformer, so ONNX inputs keep their names."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            names = ("input_ids", "attention_mask", "token_type_ids")[: len(inputs)]
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state  # type: ignore[no-any-return]

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    sample = torch.ones((2, 8), dtype=torch.int64)
    inputs = tuple(sample if name != "token_type_ids" else torch.zeros_like(sample) for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=".onnx")
    os.close(handle)
    try:
        # the tracer warns about shape-dependent Python branches it freezes; the dynamic axes
        # below cover them (outputs are checked against PyTorch in the tests)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                inputs,
                partial,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT/XLM-R
            )
        os.chmod(partial, 0o644)  # mkstemp's 0600 would hide the export from other users of a shared install
        os.replace(partial, target)
    except Exception as e:
        Path(partial).unlink(missing_ok=True)
        raise ClassifierError(f"cannot export {model_dir} to ONNX: {e}") from e
    log.info("exported %s to %s", model_dir, target)
    return target
