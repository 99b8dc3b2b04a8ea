"""One-time export of a sentence-transformers model to ONNX, cached on disk.

The classifier runs its encoder with ONNX Runtime: on this project's 2-core CPUs a query embeds
several times faster than through PyTorch, and a process that finds the exported model in the
cache never imports torch at all (seconds and ~500 MB off every proxy start). The export itself
needs torch and transformers, which sentence-transformers already brings, and happens once per
model, in a short-lived child process (``python -m biorouter.classify.onnx_export``) so torch's memory
leaves with it: the proxy that triggered it stays small. Files are written atomically under
``<cache>/onnx/<fingerprint>/``, so replicas starting together at worst export twice, never read
half a file.

``precision: int8`` adds a dynamically quantised copy (MatMul weights, per channel): about twice
as fast again on a CPU, for about half a point of task accuracy on the external evaluation set
(``bench/decision_latency.py`` prints both). Plain per-tensor int8 lost four points and is not used.

Only the transformer runs in ONNX; pooling and normalisation are a few numpy lines in
:mod:`biorouter.classify.onnx_encoder`, read from the model folder's sentence-transformers config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Literal

from biorouter.errors import ClassifierError
from biorouter.files import replaced_atomically

__all__ = ["ONNX_FILE", "Precision", "ensure_exported", "export_transformer", "model_fingerprint", "quantize"]

log = logging.getLogger("biorouter.onnx_export")

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
Precision = Literal["fp32", "int8"]
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

    try:
        # the tracer warns about shape-dependent Python branches it freezes; the dynamic axes
        # below cover them (outputs are checked against PyTorch in the tests)
        with replaced_atomically(target) as partial, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                inputs,
                str(partial),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT/XLM-R
            )
    except Exception as e:
        raise ClassifierError(f"cannot export {model_dir} to ONNX: {e}") from e
    log.info("exported %s to %s", model_dir, target)
    return target


def quantize(source: Path, target: Path) -> Path:
    """An int8 copy of ``source`` (dynamic quantisation of MatMul weights, per output channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with replaced_atomically(target) as partial, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" advice
            quantize_dynamic(
                source, partial, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
            )
    except Exception as e:
        raise ClassifierError(f"cannot quantise {source} to int8: {e}") from e
    return target


def _export(model_dir: Path, folder: Path, precision: Precision) -> Path:
    """Both steps, in this process (the child's job)."""
    full = folder / ONNX_FILE
    if not full.is_file():
        export_transformer(model_dir, full)
    if precision == "fp32":
        return full
    return quantize(full, folder / INT8_FILE)


def ensure_exported(model_dir: Path, cache_dir: Path, precision: Precision) -> tuple[Path, str]:
    """The ONNX file for ``model_dir`` at ``precision`` and its fingerprint, exporting it first if needed."""
    fingerprint = model_fingerprint(model_dir)
    folder = cache_dir / "onnx" / fingerprint
    target = folder / (INT8_FILE if precision == "int8" else ONNX_FILE)
    if target.is_file():
        return target, fingerprint
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ClassifierError(
            f"cannot create the encoder cache {folder}: {e} (set cache_dir or BIOROUTER_CACHE_DIR)"
        ) from e
    log.info("exporting the encoder %s to ONNX (%s) in %s, once", model_dir, precision, folder)
    command = [sys.executable, "-m", "biorouter.classify.onnx_export", str(model_dir), str(folder), precision]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0 or not target.is_file():
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ClassifierError(f"exporting {model_dir} to ONNX failed: {detail[-1] if detail else done.returncode}")
    return target, fingerprint


def main(argv: list[str] | None = None) -> int:
    """``python -m biorouter.classify.onnx_export MODEL_DIR FOLDER fp32|int8``: the child process's entry point."""
    from biorouter import offline

    offline.apply()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[2] not in ("fp32", "int8"):
        print("usage: python -m biorouter.classify.onnx_export MODEL_DIR FOLDER fp32|int8", file=sys.stderr)
        return 2
    try:
        _export(Path(args[0]), Path(args[1]), "int8" if args[2] == "int8" else "fp32")
    except ClassifierError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
