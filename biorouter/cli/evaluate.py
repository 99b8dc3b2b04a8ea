"""``biorouter eval --data FILE.jsonl``: measure the task classifier on labelled prompts.

Reports task accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, plus
group accuracy: how often the request reached the deployment group its true task would have
reached under the profile, which is what users feel (two tasks served by one group are not an
error for them). ``--classifier lexical`` measures the fallback that routes while the encoder is down.

The task counted is the one the profile routes to (the classifier's best task, unless a task the
profile prefers, ``classifier.prefer``, scores within its margin). When the lines carry a
``source``, accuracy is also shown per source (repository). ``--cross-source`` splits the sources
into a fixed tune half and check half (see :func:`biorouter.classify.evaluation.source_half`), fits the
per-task thresholds and the safety margin on the tune half only (plus any ``--tune-data`` files),
and reports the check half before and after: the figure that says how the classifier does on
sources its utterances and thresholds were not driven by.
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
        "--cross-source",
        action="store_true",
        help="split sources into a fixed tune/check half; fit thresholds and the safety margin on the tune half "
        "and report the check half",
    )
    parser.add_argument(
        "--tune-data",
        type=Path,
        action="append",
        default=[],
        help="with --cross-source: a further labelled file on the tune side (repeatable), e.g. a safety set",
    )
    parser.add_argument(
        "--classifier",
        choices=("configured", "lexical"),
        default="configured",
        help="'lexical' measures the fallback classifier alone (what routes while the encoder is down)",
    )
    parser.set_defaults(handler=run)


def _routed(engine: Any, profile: Any, task: str | None, confidence: float, scores: Any) -> tuple[str | None, str]:
    """The task the profile routes to and the group it reaches, for one classifier answer."""
    from biorouter.errors import RoutingError
    from biorouter.routing.decision import Signals
    from biorouter.routing.policy import decide

    signals = Signals(requested_model="auto", task=task, confidence=confidence, scores=scores)
    try:
        decision = decide(signals, profile, engine.catalogue)
    except RoutingError:
        return task, "(refused)"
    return decision.task, decision.group


class _Scored:
    """One example as classified: its gold label, source and every task's score."""

    def __init__(self, example: Any, task: str | None, confidence: float, scores: Any) -> None:
        self.example, self.task, self.confidence, self.scores = example, task, confidence, dict(scores)


async def _classify_all(engine: Any, examples: list[Any], lexical: bool) -> tuple[list[_Scored], Counter[str]]:
    """Every example classified once, and how many answers each classifier gave (embedding/lexical)."""
    from tqdm import tqdm

    classify = await _lexical_classify(engine) if lexical else engine.classifier.aclassify
    scored = []
    sources: Counter[str] = Counter()
    bar = tqdm(examples, desc="classifying", unit="prompt", disable=not sys.stderr.isatty(), file=sys.stderr)
    for example in bar:
        result = await classify(example.text)
        sources[result.source] += 1
        scored.append(_Scored(example, result.task, result.confidence, result.scores))
    return scored, sources


def _predictions(engine: Any, profile: Any, scored: list[_Scored]) -> tuple[list[Any], float]:
    """Predictions (the routed task) under ``profile``, and group accuracy."""
    from biorouter.classify.evaluation import Prediction

    predictions = []
    same_group = 0
    for item in scored:
        example = item.example
        task, group = _routed(engine, profile, item.task, item.confidence, item.scores)
        predictions.append(
            Prediction(
                text=example.text, label=example.label, task=task, confidence=item.confidence, source=example.source
            )
        )
        same_group += group == _routed(engine, profile, example.label, 1.0, {})[1]
    return predictions, same_group / len(scored) if scored else 0.0


async def _lexical_classify(engine: Any) -> Callable[[str], Awaitable[Any]]:
    """The lexical fallback alone, trained on the same utterances as the configured classifier."""
    from biorouter.classify.classifier import Classification, query_text
    from biorouter.classify.lexical import LexicalClassifier
    from biorouter.classify.utterances import load_utterances

    settings = engine.settings
    model = LexicalClassifier.fit(load_utterances(settings.utterances_path, display_root=settings.home))

    async def classify(text: str) -> Classification:
        scores = model.probabilities(
            query_text(text, settings.classifier.max_query_chars, fold_pasted=settings.classifier.fold_pasted)
        )
        best = max(scores, key=lambda task: (scores[task], task))
        return Classification(task=best, confidence=scores[best], scores=scores, source="lexical")

    return classify


def _check_writable(path: Path | None, flag: str) -> None:
    from biorouter.errors import BiorouterError

    if path is not None and not path.resolve().parent.is_dir():
        raise BiorouterError(f"{flag} {path}: folder {path.resolve().parent} does not exist")


def run(args: argparse.Namespace) -> int:
    from biorouter.classify.evaluation import (
        build_report,
        per_source,
        plot_confusion,
        read_examples,
        render_report,
        render_sources,
        write_predictions,
    )
    from biorouter.errors import BiorouterError
    from biorouter.serving.engine import BioRouter

    _check_writable(args.predictions, "--predictions")
    _check_writable(args.plot, "--plot")
    if args.tune_data and not args.cross_source:
        raise BiorouterError("--tune-data is only used with --cross-source")
    examples = read_examples(args.data)
    extra = [example for path in args.tune_data for example in read_examples(path)]
    engine = BioRouter.from_settings(profile=args.profile)
    lexical = args.classifier == "lexical"
    scored, sources = asyncio.run(_classify_all(engine, examples, lexical))
    predictions, group_accuracy = _predictions(engine, engine.profile, scored)
    report = build_report(predictions).model_copy(update={"group_accuracy": group_accuracy})
    figures = per_source(predictions) if any(example.source for example in examples) else []
    cross = None
    if args.cross_source:
        extra_scored, _ = asyncio.run(_classify_all(engine, extra, lexical)) if extra else ([], Counter())
        cross = _cross_source(engine, scored, extra_scored)
    if args.predictions:
        write_predictions(args.predictions, predictions)
    if args.plot:
        plot_confusion(report, args.plot, title=f"biorouter task confusion matrix — {args.data.name}")
    fallback_note = _fallback_note(engine, sources, args.classifier)
    if args.json:
        header = {"profile": engine.profile.name, "classifier_sources": dict(sources)}
        body = report.model_dump(mode="json")
        if figures:
            body["per_source"] = [{**f.model_dump(mode="json"), "accuracy": f.accuracy} for f in figures]
        if cross is not None:
            body["cross_source"] = cross
        print(json.dumps({**header, **body}, indent=2))
    else:
        print(render_report(report))
        print(f"group accuracy (profile {engine.profile.name}): {group_accuracy:.1%}")
        print("classified by: " + ", ".join(f"{source} {count}" for source, count in sorted(sources.items())))
        if figures:
            print("\naccuracy per source (half: side of the fixed cross-source split)")
            print(render_sources(figures), end="")
        if cross is not None:
            print(_render_cross(cross, engine.profile.name))
    if fallback_note:
        print(fallback_note, file=sys.stderr)
    return 0


def _fit(engine: Any, items: list[_Scored]) -> tuple[Any, dict[str, Any]]:
    """The profile with per-task thresholds and the safety margin fitted on ``items``, and what was fitted."""
    from biorouter.classify.tuning import Scored, propose_margin, propose_thresholds

    profile = engine.profile
    fitted = [Scored(label=item.example.label, scores=item.scores) for item in items if item.task is not None]
    thresholds = propose_thresholds(fitted, profile, engine.catalogue).thresholds() if fitted else {}
    prefer = dict(profile.classifier.prefer)
    margin = None
    if fitted and "safety" in profile.routes:
        margin = propose_margin(fitted, "safety")
        prefer["safety"] = margin.margin
    tuned = profile.model_copy(
        update={"classifier": profile.classifier.model_copy(update={"per_task": thresholds, "prefer": prefer})}
    )
    return tuned, {
        "per_task": thresholds,
        "prefer": prefer,
        "safety_margin": margin.model_dump(mode="json") if margin else None,
    }


def _figures(engine: Any, profile: Any, items: list[_Scored]) -> dict[str, Any]:
    from biorouter.classify.evaluation import build_report

    predictions, group = _predictions(engine, profile, items)
    report = build_report(predictions)
    return {
        "examples": report.examples,
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "group_accuracy": group,
        "recall": {label: m.recall for label, m in report.per_class.items() if m.support},
    }


def _cross_source(engine: Any, scored: list[_Scored], extra: list[_Scored]) -> dict[str, Any]:
    """Fit on the tune half (plus ``extra``) and report the check half; then leave each source out in turn.

    Leave-one-source-out fits thresholds and the safety margin on every other source (plus
    ``extra``) and reports the source left out: what tuning on other people's prompts is worth
    for each source, including the tune half's (whose utterances, unlike the thresholds, were
    fitted to it).
    """
    from biorouter.classify.evaluation import source_half

    halves: dict[str, list[_Scored]] = {"tune": [], "check": []}
    for item in scored:
        halves[source_half(item.example.source)].append(item)
    tuned, fitted = _fit(engine, halves["tune"] + extra)
    result: dict[str, Any] = {
        "tune_sources": sorted({_unit(item) for item in halves["tune"]}),
        "check_sources": sorted({_unit(item) for item in halves["check"]}),
        "extra_tune_examples": len(extra),
        "fitted": fitted,
    }
    for half, items in halves.items():
        result[half] = (
            {"shipped": _figures(engine, engine.profile, items), "tuned": _figures(engine, tuned, items)}
            if items
            else None
        )
    units = sorted({_unit(item) for item in scored})
    left_out = []
    if len(units) > 1:
        for unit in units:
            held = [item for item in scored if _unit(item) == unit]
            others, _ = _fit(engine, [item for item in scored if _unit(item) != unit] + extra)
            shipped, refit = _figures(engine, engine.profile, held), _figures(engine, others, held)
            left_out.append(
                {
                    "source": unit,
                    "half": source_half(unit),
                    "examples": len(held),
                    "accuracy": shipped["accuracy"],
                    "group_accuracy": shipped["group_accuracy"],
                    "fitted_accuracy": refit["accuracy"],
                    "fitted_group_accuracy": refit["group_accuracy"],
                }
            )
    result["leave_one_source_out"] = left_out
    return result


def _unit(item: _Scored) -> str:
    from biorouter.classify.evaluation import source_unit

    return source_unit(item.example.source)


def _render_cross(cross: dict[str, Any], profile: str) -> str:
    lines = [
        "",
        "cross-source split (fixed by a hash of each repository; biorouter.classify.evaluation.source_half)",
        f"  tune half:  {', '.join(cross['tune_sources'])}",
        f"  check half: {', '.join(cross['check_sources'])}",
        f"  fitted on the tune half (+{cross['extra_tune_examples']} --tune-data examples): "
        f"per_task {cross['fitted']['per_task'] or '{}'}, prefer {cross['fitted']['prefer'] or '{}'}",
    ]
    for half in ("tune", "check"):
        entry = cross[half]
        if entry is None:
            lines.append(f"  {half} half: no examples")
            continue
        for name in ("shipped", "tuned"):
            e = entry[name]
            label = f"profile {profile}" if name == "shipped" else "fitted on tune half"
            lines.append(
                f"  {half:<5} half, {label:<24} n={e['examples']:>4}  accuracy {e['accuracy']:.1%}  "
                f"macro-F1 {e['macro_f1']:.3f}  group {e['group_accuracy']:.1%}"
            )
    if cross["leave_one_source_out"]:
        lines.append("leave one source out (thresholds and margin fitted on every other source): accuracy / group")
        width = max(len(row["source"]) for row in cross["leave_one_source_out"])
        for row in cross["leave_one_source_out"]:
            lines.append(
                f"  {row['source']:<{width}}  {row['half']:<5} n={row['examples']:>4}  shipped "
                f"{row['accuracy']:.1%} / {row['group_accuracy']:.1%}  fitted on the others "
                f"{row['fitted_accuracy']:.1%} / {row['fitted_group_accuracy']:.1%}"
            )
    return "\n".join(lines)


def _fallback_note(engine: Any, sources: Counter[str], mode: str) -> str | None:
    """A warning when the configured classifier was measured but the lexical fallback answered."""
    if mode == "lexical" or not sources["lexical"]:
        return None
    cause = engine.classifier.load_error or "the encoder failed on some requests"
    return (
        f"warning: the lexical fallback answered {sources['lexical']} of {sum(sources.values())} prompts "
        f"({cause}): these figures are not the embedding classifier's"
    )
