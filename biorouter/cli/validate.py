"""``biorouter validate``: check profiles, litellm_config and utterances; exit 1 on any error."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate", help="check every profile, litellm_config and utterances/ (exit 1 on errors)", description=__doc__
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from biorouter.serving.validate import validate_all
    from biorouter.settings import load_settings

    report = validate_all(load_settings())
    if args.json:
        payload = {
            "ok": report.ok,
            "errors": [str(p) for p in report.errors],
            "warnings": [str(p) for p in report.warnings],
            "profiles": list(report.profiles),
            "tasks": dict(report.tasks),
            "groups": dict(report.groups),
            "governance": dict(report.governance),
        }
        print(json.dumps(payload, indent=2))
        return 0 if report.ok else 1
    for problem in report.problems:
        print(problem)
    if report.groups:
        print("groups: " + ", ".join(f"{name} ({locality})" for name, locality in report.groups.items()))
    print(f"profiles: {', '.join(report.profiles) or '-'}")
    for name, description in report.governance.items():
        print(f"governance ({name}): {description}")
    print(f"tasks: {', '.join(f'{t} ({n})' for t, n in sorted(report.tasks.items())) or '-'}")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "OK" if report.ok else "FAILED"
    print(f"{verdict}: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return 0 if report.ok else 1
