"""``biorouter route TEXT``: show the decision for a request, without calling any upstream."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "route", help="show where a request would go and why (no upstream is called)", description=__doc__
    )
    parser.add_argument("text", help="the user's request text")
    parser.add_argument("--profile", help="profile to use (default: biorouter.yaml / BIOROUTER_PROFILE)")
    parser.add_argument("--model", default="auto", help="the request's model field (default: auto)")
    parser.add_argument("--task", help="the client's task hint (metadata.biorouter_task)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from biorouter.serving.engine import BioRouter

    engine = BioRouter.from_settings(profile=args.profile)
    decision = asyncio.run(engine.aroute([{"role": "user", "content": args.text}], model=args.model, task=args.task))
    if args.json:
        print(json.dumps(decision.summary(), sort_keys=True))
        return 0
    print(f"profile     {decision.profile}")
    print(f"task        {decision.task or '-'}  (confidence {decision.confidence or 0:.3f})")
    print(f"group       {decision.group}  [{engine.catalogue.groups[decision.group].locality}]")
    print(f"fallbacks   {', '.join(decision.fallbacks) or '-'}")
    if decision.tier is not None:
        print(f"tier        {decision.tier}  (complexity {decision.complexity or 0:.2f})")
    local = f"  LOCAL ONLY: {decision.local_only_reason}" if decision.local_only else ""
    print(f"mode        {decision.mode}{local}")
    for reason in decision.reasons:
        print(f"why         {reason}")
    if decision.scores:
        ranked = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)
        print("scores      " + "  ".join(f"{task}={score:.3f}" for task, score in ranked))
    return 0
