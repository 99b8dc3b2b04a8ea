"""What every benchmark shares: percentiles, a table printer, and the accuracy guard.

The accuracy guard classifies ``../shared/eval/routing_dev.jsonl`` (external labelled prompts;
read in place, never copied) with the same classifier settings the benchmark measured, so a
speed-up that costs accuracy shows up in the same printout. Without the file (outside the
project's workspace) the guard says so instead of failing the benchmark.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from biorouter import offline

offline.apply()

ROOT = Path(__file__).resolve().parent.parent
EVAL_DATA = Path(os.environ.get("BIOROUTER_EVAL_DATA", ROOT.parent / "shared" / "eval" / "routing_dev.jsonl"))

__all__ = ["EVAL_DATA", "ROOT", "accuracy_line", "percentile", "summary"]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> str:
    """``p50 / p90 / p99`` of milliseconds, for one table cell."""
    return f"{statistics.median(values):7.2f} {percentile(values, 0.9):7.2f} {percentile(values, 0.99):7.2f}"


async def _accuracy(classifier: object, data: Path) -> tuple[float, float]:
    from biorouter.classify.evaluation import Prediction, build_report, read_examples

    examples = read_examples(data)
    predictions = []
    for example in examples:
        result = await classifier.aclassify(example.text)  # type: ignore[attr-defined]
        predictions.append(
            Prediction(text=example.text, label=example.label, task=result.task, confidence=result.confidence)
        )
    report = build_report(predictions)
    return report.accuracy, report.macro_f1


def accuracy_line(classifier: object | None = None, data: Path = EVAL_DATA) -> str:
    """``accuracy 82.9% macro-F1 0.81 on N external prompts`` for ``classifier`` (default: biorouter.yaml's)."""
    if not data.is_file():
        return f"accuracy guard skipped: {data} not found (set BIOROUTER_EVAL_DATA)"
    if classifier is None:
        from biorouter.classify.classifier import TaskClassifier
        from biorouter.settings import load_settings

        classifier = TaskClassifier.from_settings(load_settings(ROOT))
    accuracy, macro_f1 = asyncio.run(_accuracy(classifier, data))
    return f"accuracy guard: task accuracy {accuracy:.1%}, macro-F1 {macro_f1:.3f} on {data.name}"
