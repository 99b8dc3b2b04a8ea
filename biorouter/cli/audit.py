"""``biorouter audit``: summarise the audit log of local-only decisions; exit 2 if any reached the cloud.

Reads the JSON-lines log the engine and the proxy write (``audit_log:`` in biorouter.yaml, or
BIOROUTER_AUDIT_LOG) and reports how many requests had to stay local, how many were served
locally or refused, and why: by rule, task, group and profile. A local-only request answered by
a cloud deployment is a violation: it is reported and the command exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biorouter.serving.audit import AuditRecord, AuditSummary

__all__ = ["register", "run"]

VIOLATION_EXIT = 2
_SHOWN_VIOLATIONS = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="summarise the audit log of local-only decisions (exit 2 if any reached the cloud)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only records from this moment: an age (30m, 24h, 7d, 2w) or an ISO date or time "
        "(2026-11-21, 2026-11-21T10:00, with or without a zone; none means UTC); default: everything",
    )
    parser.add_argument(
        "--log", type=Path, metavar="PATH", help="the audit log to read (default: audit_log in biorouter.yaml)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from biorouter.errors import BiorouterError
    from biorouter.serving.audit import parse_since, read_records, summarise

    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since)
        except ValueError as e:
            raise BiorouterError(f"--since {e}") from e
    path, origin = (args.log, "given with --log") if args.log is not None else _configured_log()
    try:
        records = list(read_records(path, since=since))
    except FileNotFoundError as e:
        raise BiorouterError(
            f"no audit log at {path} ({origin}); the proxy creates it on the first local-only request. "
            "Set its place with 'audit_log:' in biorouter.yaml or BIOROUTER_AUDIT_LOG, or pass --log PATH"
        ) from e
    except OSError as e:
        raise BiorouterError(f"cannot read the audit log {path}: {e.strerror or e}") from e
    summary = summarise(records)
    if args.json:
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
        if summary.served_by_cloud:
            print(_violation(summary.served_by_cloud), file=sys.stderr)
    elif summary.total == 0:
        period = f" since {_when(since)}" if since is not None else ""
        print(f"no local-only decisions{period} in {path}")
    else:
        _print_report(path, since, summary, records)
    return VIOLATION_EXIT if summary.served_by_cloud else 0


def _configured_log() -> tuple[Path, str]:
    """The settings' audit log, and where that path came from (for the error if it is missing)."""
    from biorouter.errors import BiorouterError
    from biorouter.settings import SETTINGS_FILE, load_settings

    settings = load_settings()
    path = settings.audit_log_path
    if path is None:
        raise BiorouterError(
            "the audit log is turned off ('audit_log: null' in biorouter.yaml, or BIOROUTER_AUDIT_LOG set empty); "
            "give it a path there, or pass --log PATH"
        )
    if os.environ.get("BIOROUTER_AUDIT_LOG"):
        return path, "from BIOROUTER_AUDIT_LOG"
    return path, f"from 'audit_log:' in {settings.home / SETTINGS_FILE}"


def _print_report(path: Path, since: datetime | None, summary: AuditSummary, records: list[AuditRecord]) -> None:
    period = f"{_when(summary.first)} to {_when(summary.last)}"
    print(f"audit log        {path}")
    print(f"period           {period}" + (f"  (records since {_when(since)})" if since is not None else ""))
    print(f"local-only       {summary.total} decision{'s' * (summary.total != 1)}")
    print(f"served locally   {summary.served - summary.served_by_cloud}")
    print(f"refused          {summary.refused}")
    if summary.served_by_cloud:
        print(f"served by cloud  {summary.served_by_cloud}")
        print(_violation(summary.served_by_cloud))
        cloud = [r for r in records if r.outcome == "served" and r.locality != "local"]
        for record in cloud[:_SHOWN_VIOLATIONS]:
            deployment = ", ".join(filter(None, (record.deployment_id, record.api_base))) or "deployment unknown"
            print(f"  {_when(record.time)}  request {record.request_id} -> {record.group or '-'} ({deployment})")
        if len(cloud) > _SHOWN_VIOLATIONS:
            print(f"  ... and {len(cloud) - _SHOWN_VIOLATIONS} more")
    else:
        print("served by cloud  0  (none left the premises)")
    _print_counts("by rule", summary.by_rule)
    _print_counts("by task", summary.by_task)
    _print_counts("by group (served)", summary.by_group)
    _print_counts("by profile", summary.by_profile)
    _print_counts("top refusals", summary.refusals)


def _print_counts(title: str, counts: Mapping[str, int]) -> None:
    print(f"\n{title}")
    if not counts:
        print("  -")
        return
    width = max(len(str(n)) for n in counts.values())
    for name, count in counts.items():
        print(f"  {count:>{width}}  {name}")


def _violation(count: int) -> str:
    return f"VIOLATION: {count} local-only requests were answered by a cloud deployment"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
