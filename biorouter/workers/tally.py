"""Each worker's session counters in a file of its own, and their sum.

A worker rewrites ``session-<pid>.json`` (atomically) within half a second of counting something,
and at shutdown. ``/biorouter/status``, answered by whichever worker the request reached, writes
its own file first and then sums every file in the folder; so its own counts are exact and the
others' at most half a second old. Files of workers that exited stay and keep counting: what a
worker served before a restart was served by this proxy. ``biorouter serve`` empties the folder
when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from biorouter.serving.session import Counter, SessionSummary

__all__ = ["WorkerTally", "combine", "read_tallies", "write_tally"]

_PREFIX = "session-"


class WorkerTally(BaseModel):
    """What one worker reports: who it is, the configuration it serves, and its session counters."""

    model_config = ConfigDict(frozen=True)

    pid: int
    generation: int
    profile: str
    updated_at: datetime
    summary: SessionSummary


def write_tally(folder: Path, tally: WorkerTally) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_PREFIX}{tally.pid}.json"
    temporary = folder / f".{_PREFIX}{tally.pid}.tmp"
    temporary.write_text(tally.model_dump_json(), encoding="utf-8")
    os.replace(temporary, path)


def read_tallies(folder: Path) -> list[WorkerTally]:
    """Every worker's latest tally (a file being replaced or damaged is skipped), by pid."""
    tallies = []
    for path in sorted(folder.glob(f"{_PREFIX}*.json")):
        try:
            tallies.append(WorkerTally.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError):
            continue
    return sorted(tallies, key=lambda tally: tally.pid)


def _add(into: Counter, counter: Counter) -> None:
    into.requests += counter.requests
    into.errors += counter.errors
    into.refused += counter.refused
    into.cost_usd += counter.cost_usd


def _summed(tables: Iterable[dict[str, Counter]]) -> dict[str, Counter]:
    total: dict[str, Counter] = {}
    for table in tables:
        for key, counter in table.items():
            _add(total.setdefault(key, Counter()), counter)
    return dict(sorted(total.items()))


def combine(tallies: list[WorkerTally], current: SessionSummary) -> SessionSummary:
    """One summary for the whole proxy: counters summed, started at the first worker's start.

    ``current`` (the answering worker's own, fresh summary) supplies the profile and how it was
    chosen; switches are listed once each (every worker records the same switch with the time the
    first one made it).
    """
    summaries = [tally.summary for tally in tallies] or [current]
    totals = Counter()
    for summary in summaries:
        _add(totals, summary.totals)
    started = min(summary.started_at for summary in summaries)
    switches = sorted({switch for summary in summaries for switch in summary.switches}, key=lambda s: s.time)
    return current.model_copy(
        update={
            "started_at": started,
            "uptime_s": round((datetime.now(UTC) - started).total_seconds(), 3),
            "totals": totals,
            "by_task": _summed(summary.by_task for summary in summaries),
            "by_group": _summed(summary.by_group for summary in summaries),
            "switches": tuple(switches),
        }
    )
