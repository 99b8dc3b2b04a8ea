"""The audit trail: one JSON line per local-only decision, and what became of it.

Auditors ask two questions: "which requests had to stay on premises, and why?" and "did every one
of them stay?". Each record answers both for one request: when, which request and profile, the
task, the rules that made it local-only (rule names, never the text), and the outcome: served by
which group and deployment (with that deployment's locality), or refused and why.

Records are appended with one ``write()`` of one line to a file opened in append mode, so
several proxy workers (or replicas on a shared volume) can write the same log without
interleaving lines. ``biorouter audit`` summarises the file. Times are UTC; a time written
without a zone (by hand, or as ``--since 2026-11-21``) is read as UTC.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from biorouter.routing.decision import Decision

__all__ = ["AuditLog", "AuditRecord", "AuditSummary", "parse_since", "read_records", "summarise"]

logger = logging.getLogger("biorouter.audit")

Outcome = Literal["served", "refused"]


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    time: datetime
    request_id: str
    profile: str
    task: str | None
    rules: tuple[str, ...]
    outcome: Outcome
    group: str | None = Field(default=None, description="the group that served, or the one decided on")
    deployment_id: str | None = None
    api_base: str | None = None
    locality: Literal["local", "cloud"] | None = Field(default=None, description="of the serving deployment")
    error: str | None = None
    text_sha256: str = ""

    @field_validator("time")
    @classmethod
    def _utc_if_naive(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        request_id: str,
        outcome: Outcome,
        group: str | None = None,
        deployment_id: str | None = None,
        api_base: str | None = None,
        locality: Literal["local", "cloud"] | None = None,
        error: str | None = None,
    ) -> AuditRecord:
        return cls(
            time=datetime.now(UTC),
            request_id=request_id,
            profile=decision.profile,
            task=decision.task,
            rules=decision.local_only_rules,
            outcome=outcome,
            group=group or decision.group,
            deployment_id=deployment_id,
            api_base=api_base,
            locality=locality,
            error=error[:500] if error else None,
            text_sha256=decision.text_sha256[:16],
        )

    @classmethod
    def refusal(cls, *, profile: str, request_id: str, rules: tuple[str, ...], error: str) -> AuditRecord:
        """A request refused before any decision could be made (so no task or group is known)."""
        return cls(
            time=datetime.now(UTC),
            request_id=request_id,
            profile=profile,
            task=None,
            rules=rules,
            outcome="refused",
            error=error[:500],
        )


class AuditLog:
    """Appends records to a JSON-lines file; a write that fails is logged, never raised to the client."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, record: AuditRecord) -> None:
        line = record.model_dump_json() + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, line.encode("utf-8"))
                finally:
                    os.close(fd)
        except OSError as e:
            logger.error("audit log %s not written (%s): %s", self.path, e, line.strip())


def read_records(path: Path, *, since: datetime | None = None) -> Iterator[AuditRecord]:
    """Records from ``path`` at or after ``since``; a damaged line is reported and skipped."""
    if since is not None:
        since = _as_utc(since)
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = AuditRecord.model_validate(json.loads(line))
            except (ValueError, ValidationError) as e:
                logger.warning("%s:%d: not an audit record (%s)", path, number, str(e).splitlines()[0])
                continue
            if since is None or record.time >= since:
                yield record


_AGE = re.compile(r"([0-9]+)([mhdw])")
_AGE_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_SINCE_FORMS = (
    "an age in minutes, hours, days or weeks (30m, 24h, 7d, 2w) or an ISO date or time "
    "(2026-11-21, 2026-11-21T10:00, 2026-11-21T10:00+01:00; no zone means UTC)"
)


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """The moment ``value`` names: an age before ``now`` (``30m``, ``24h``, ``7d``, ``2w``) or an ISO
    date or date-time, with or without a zone (none means UTC). Raises ``ValueError`` naming the value."""
    text = value.strip()
    try:
        if age := _AGE.fullmatch(text):
            amount, unit = age.groups()
            return _as_utc(now or datetime.now(UTC)) - int(amount) * _AGE_UNITS[unit]
        return _as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{value!r} is not a time; expected {_SINCE_FORMS}") from e


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class AuditSummary(BaseModel):
    total: int
    served: int
    refused: int
    served_by_cloud: int = Field(description="local-only requests a cloud deployment answered: must be 0")
    first: datetime | None
    last: datetime | None
    by_rule: dict[str, int]
    by_task: dict[str, int]
    by_group: dict[str, int]
    by_profile: dict[str, int]
    refusals: dict[str, int] = Field(description="refusal message -> count")


def summarise(records: Iterable[AuditRecord]) -> AuditSummary:
    items = list(records)
    served = [r for r in items if r.outcome == "served"]
    refused = [r for r in items if r.outcome == "refused"]
    return AuditSummary(
        total=len(items),
        served=len(served),
        refused=len(refused),
        served_by_cloud=sum(r.locality != "local" for r in served),
        first=min((r.time for r in items), default=None),
        last=max((r.time for r in items), default=None),
        by_rule=dict(Counter(rule for r in items for rule in r.rules).most_common()),
        by_task=dict(Counter(r.task or "-" for r in items).most_common()),
        by_group=dict(Counter(r.group or "-" for r in served).most_common()),
        by_profile=dict(Counter(r.profile for r in items).most_common()),
        refusals=dict(Counter((r.error or "-")[:120] for r in refused).most_common(10)),
    )
