"""``biorouter eval --data FILE.jsonl``: measure the task classifier on labelled prompts.

Reports task accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, plus
group accuracy: how often the request reached the deployment group its true task would have
reached under the profile, which is what users feel (two tasks served by one group are not an
error for them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("eval", help="measure the classifier on a labelled JSONL file", description=__doc__)
    parser.add_argument("--data", required=True, type=Path, help='JSON Lines of {"text": ..., "label": ...}')
    parser.add_argument("--profile", help="profile for group accuracy (default: the active one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--predictions", type=Path, help="write one JSON line per example, in input order")
    parser.add_argument("--plot", type=Path, help="draw the confusion matrix to this PNG (needs matplotlib)")
    parser.set_defaults(handler=run)


def _group_for(engine: Any, task: str | None, confidence: float) -> str:
    from biorouter.decision import Signals
    from biorouter.errors import RoutingError
    from biorouter.policy import decide

    signals = Signals(requested_model="auto", task=task, confidence=confidence)
    try:
        return decide(signals, engine.profile, engine.catalogue).group
    except RoutingError:
        return "(refused)"


async def _predict(engine: Any, examples: list[Any]) -> tuple[list[Any], float]:
    from tqdm import tqdm

    from biorouter.evaluation import Prediction

    await engine.classifier.aload()
    predictions = []
    same_group = 0
    bar = tqdm(examples, desc="classifying", unit="prompt", disable=not sys.stderr.isatty(), file=sys.stderr)
    for example in bar:
        result = await engine.classifier.aclassify(example.text)
        predictions.append(
            Prediction(text=example.text, label=example.label, task=result.task, confidence=result.confidence)
        )
        expected = _group_for(engine, example.label, 1.0)
        same_group += _group_for(engine, result.task, result.confidence) == expected
    return predictions, same_group / len(examples)


def _check_writable(path: Path | None, flag: str) -> None:
    from biorouter.errors import BiorouterError

    if path is not None and not path.resolve().parent.is_dir():
        raise BiorouterError(f"{flag} {path}: folder {path.resolve().parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from biorouter.engine import BioRouter
    from biorouter.evaluation import build_report, plot_confusion, read_examples, render_report, write_predictions

    _check_writable(args.predictions, "--predictions")
    _check_writable(args.plot, "--plot")
    examples = read_examples(args.data)
    engine = BioRouter.from_settings(profile=args.profile)
    predictions, group_accuracy = asyncio.run(_predict(engine, examples))
    report = build_report(predictions).model_copy(update={"group_accuracy": group_accuracy})
    if args.predictions:
        write_predictions(args.predictions, predictions)
    if args.plot:
        plot_confusion(report, args.plot, title=f"biorouter task confusion matrix — {args.data.name}")
    if args.json:
        print(json.dumps({"profile": engine.profile.name, **report.model_dump(mode="json")}, indent=2))
    else:
        print(render_report(report))
        print(f"group accuracy (profile {engine.profile.name}): {group_accuracy:.1%}")
    return 0
