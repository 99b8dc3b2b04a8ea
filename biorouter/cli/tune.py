"""``biorouter tune --data FILE.jsonl``: propose per-task confidence thresholds from labelled prompts.

Classifies every prompt, then for each task picks the threshold that sends most requests to the
deployment group their true task would reach under the profile (see :mod:`biorouter.classify.tuning`).
Prints the proposal and the ``per_task`` block; ``--write`` puts it into the profile file
(comments kept, the result validated before it replaces the file).

It also proposes the ``classifier.prefer`` margin for ``safety`` (within it, safety takes the
request; a missed harmful request weighed ``--miss-cost`` times a lost right answer), printed for
the profile's ``classifier:`` section; ``--write`` leaves ``prefer`` as it is.

Tune on prompts that look like your users' traffic, and not on the file you then measure with
``biorouter eval``: thresholds fitted to one file look better on it than they are.
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
    parser = subparsers.add_parser(
        "tune", help="propose per-task confidence thresholds from labelled prompts", description=__doc__
    )
    parser.add_argument("--data", required=True, type=Path, help='JSON Lines of {"text": ..., "label": ...}')
    parser.add_argument("--profile", help="profile to tune (default: the active one)")
    parser.add_argument("--min-support", type=int, default=5, help="fewest examples a task needs to move (5)")
    parser.add_argument(
        "--miss-cost", type=float, default=3.0, help="a missed harmful request weighs this many lost right answers (3)"
    )
    parser.add_argument("--write", action="store_true", help="write the thresholds into the profile file")
    parser.add_argument("--json", action="store_true", help="print the proposal as JSON")
    parser.set_defaults(handler=run)


async def _score(engine: Any, examples: list[Any]) -> list[Any]:
    from biorouter.classify.tuning import Scored

    await engine.classifier.aload()
    scored = []
    for example in examples:
        result = await engine.classifier.aclassify(example.text)
        if result.task is not None:
            scored.append(Scored(label=example.label, scores=result.scores))
    return scored


def _table(report: Any) -> str:
    lines = [f"{'task':18} {'examples':>8} {'current':>8} {'proposed':>8} {'right before':>12} {'after':>6}  note"]
    for t in report.tasks:
        lines.append(
            f"{t.task:18} {t.examples:8d} {t.current:8.3f} {t.proposed:8.3f} {t.correct_before:12d} "
            f"{t.correct_after:6d}  {t.note}"
        )
    lines.append(
        f"group accuracy on {report.examples} examples (profile {report.profile}): "
        f"{report.group_accuracy_before:.1%} -> {report.group_accuracy_after:.1%}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from biorouter.classify.evaluation import read_examples
    from biorouter.classify.tuning import propose_margin, propose_thresholds, render_yaml, write_thresholds
    from biorouter.errors import BiorouterError
    from biorouter.serving.engine import BioRouter

    if args.min_support < 1:
        raise BiorouterError("--min-support must be at least 1")
    if args.miss_cost <= 0:
        raise BiorouterError("--miss-cost must be above 0")
    examples = read_examples(args.data)
    engine = BioRouter.from_settings(profile=args.profile)
    scored = asyncio.run(_score(engine, examples))
    report = propose_thresholds(scored, engine.profile, engine.catalogue, min_support=args.min_support)
    thresholds = report.thresholds()
    margin = propose_margin(scored, "safety", miss_cost=args.miss_cost) if "safety" in engine.profile.routes else None
    if args.json:
        extra = {"per_task": thresholds, "safety_margin": margin.model_dump(mode="json") if margin else None}
        print(json.dumps({**report.model_dump(mode="json"), **extra}, indent=2))
    else:
        print(_table(report))
        print(f"\nclassifier:\n  min_confidence: {report.min_confidence}\n{render_yaml(thresholds)}")
        if margin is not None:
            print(
                f"  prefer: {{safety: {margin.margin}}}   # {margin.recovered} of {margin.task_examples} harmful "
                f"requests won back, {margin.lost} right answers lost (miss cost {margin.miss_cost:g})"
            )
    if args.write:
        path = engine.settings.profiles_path / f"{engine.profile.name}.yaml"
        write_thresholds(path, thresholds)
        print(f"written to {path} (run `biorouter validate`, then reload the proxy)", file=sys.stderr)
    return 0
