"""``biorouter eval --data FILE.jsonl``: measure the task classifier on labelled prompts.

Reports task accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, plus
group accuracy: how often the request reached the deployment group its true task would have
reached under the profile, which is what users feel (two tasks served by one group are not an
error for them). ``--classifier lexical`` measures the fallback that routes while the encoder is down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
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
    parser.add_argument(
        "--classifier",
        choices=("configured", "lexical"),
        default="configured",
        help="'lexical' measures the fallback classifier alone (what routes while the encoder is down)",
    )
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


async def _predict(engine: Any, examples: list[Any], lexical: bool) -> tuple[list[Any], float, Counter[str]]:
    """Predictions, group accuracy, and how many answers each classifier gave (embedding/lexical)."""
    from tqdm import tqdm

    from biorouter.evaluation import Prediction

    classify = await _lexical_classify(engine) if lexical else engine.classifier.aclassify
    predictions = []
    same_group = 0
    sources: Counter[str] = Counter()
    bar = tqdm(examples, desc="classifying", unit="prompt", disable=not sys.stderr.isatty(), file=sys.stderr)
    for example in bar:
        result = await classify(example.text)
        sources[result.source] += 1
        predictions.append(
            Prediction(text=example.text, label=example.label, task=result.task, confidence=result.confidence)
        )
        expected = _group_for(engine, example.label, 1.0)
        same_group += _group_for(engine, result.task, result.confidence) == expected
    return predictions, same_group / len(examples), sources


async def _lexical_classify(engine: Any) -> Callable[[str], Awaitable[Any]]:
    """The lexical fallback alone, trained on the same utterances as the configured classifier."""
    from biorouter.classifier import Classification, query_text
    from biorouter.lexical import LexicalClassifier
    from biorouter.utterances import load_utterances

    settings = engine.settings
    model = LexicalClassifier.fit(load_utterances(settings.utterances_path, display_root=settings.home))

    async def classify(text: str) -> Classification:
        scores = model.probabilities(query_text(text, settings.classifier.max_query_chars))
        best = max(scores, key=lambda task: (scores[task], task))
        return Classification(task=best, confidence=scores[best], scores=scores, source="lexical")

    return classify


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
    predictions, group_accuracy, sources = asyncio.run(_predict(engine, examples, args.classifier == "lexical"))
    report = build_report(predictions).model_copy(update={"group_accuracy": group_accuracy})
    if args.predictions:
        write_predictions(args.predictions, predictions)
    if args.plot:
        plot_confusion(report, args.plot, title=f"biorouter task confusion matrix — {args.data.name}")
    fallback_note = _fallback_note(engine, sources, args.classifier)
    if args.json:
        extra = {"profile": engine.profile.name, "classifier_sources": dict(sources)}
        print(json.dumps({**extra, **report.model_dump(mode="json")}, indent=2))
    else:
        print(render_report(report))
        print(f"group accuracy (profile {engine.profile.name}): {group_accuracy:.1%}")
        print("classified by: " + ", ".join(f"{source} {count}" for source, count in sorted(sources.items())))
    if fallback_note:
        print(fallback_note, file=sys.stderr)
    return 0


def _fallback_note(engine: Any, sources: Counter[str], mode: str) -> str | None:
    """A warning when the configured classifier was measured but the lexical fallback answered."""
    if mode == "lexical" or not sources["lexical"]:
        return None
    cause = engine.classifier.load_error or "the encoder failed on some requests"
    return (
        f"warning: the lexical fallback answered {sources['lexical']} of {sum(sources.values())} prompts "
        f"({cause}): these figures are not the embedding classifier's"
    )
