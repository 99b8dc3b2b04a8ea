"""A session: one proxy process or one ``BioRouter`` instance, with its profile fixed and its counters.

The active profile is chosen once, when the session starts (:mod:`biorouter.hardware.selection`), and changes
only through :meth:`Session.switch` — an explicit, logged action with a reason — never as a side
effect of a request. The session counts what it served: requests, errors, local-only refusals and
cost, per task and per deployment group, and prints a summary when it ends.

Counters are kept in memory, per process; shared budgets across replicas are the ledger's job.
With several proxy workers, each writes its counters to the workers' shared folder and the status
endpoint sums them (:mod:`biorouter.workers.tally`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Counter", "Session", "SessionSummary", "Switch", "response_cost"]

logger = logging.getLogger("biorouter.session")


class Counter(BaseModel):
    requests: int = 0
    errors: int = 0
    refused: int = 0
    cost_usd: float = 0.0


class Switch(BaseModel):
    model_config = ConfigDict(frozen=True)

    time: datetime
    previous: str
    profile: str
    reason: str
    by: str


class SessionSummary(BaseModel):
    profile: str
    selected: str = Field(description="how the profile was chosen: explicitly, or automatically and why")
    warnings: tuple[str, ...] = ()
    started_at: datetime
    uptime_s: float
    totals: Counter
    by_task: dict[str, Counter]
    by_group: dict[str, Counter]
    switches: tuple[Switch, ...] = ()


class Session:
    """Thread-safe counters and the record of profile switches for one process or instance."""

    def __init__(self, profile: str, *, selected: str = "chosen explicitly", warnings: tuple[str, ...] = ()) -> None:
        self.profile = profile
        self.selected = selected
        self.warnings = warnings
        self.started_at = datetime.now(UTC)
        self._totals = Counter()
        self._by_task: dict[str, Counter] = {}
        self._by_group: dict[str, Counter] = {}
        self._switches: list[Switch] = []
        self._lock = threading.Lock()
        self.version = 0  # +1 per change: tells a worker its tally file is out of date without comparing

    def record(
        self, *, task: str | None, group: str | None, ok: bool, refused: bool = False, cost_usd: float = 0.0
    ) -> None:
        """Count one finished request under its task and the group that served (or was meant to)."""
        with self._lock:
            for counter in (
                self._totals,
                self._by_task.setdefault(task or "-", Counter()),
                self._by_group.setdefault(group or "-", Counter()),
            ):
                counter.requests += 1
                counter.errors += 0 if ok else 1
                counter.refused += 1 if refused else 0
                counter.cost_usd += max(cost_usd, 0.0)
            self.version += 1

    def switch(self, profile: str, *, reason: str, by: str, at: datetime | None = None) -> Switch:
        """Record an explicit change of the active profile (the caller rebuilds what depends on it).

        ``at``: when it was made (a worker applying a sibling's switch records the sibling's time,
        so the summed summary lists the switch once).
        """
        if not reason.strip():
            raise ValueError("a profile switch needs a reason")
        with self._lock:
            entry = Switch(time=at or datetime.now(UTC), previous=self.profile, profile=profile, reason=reason, by=by)
            self._switches.append(entry)
            self.version += 1
            self.profile = profile
            self.selected = f"switched by {by}: {reason}"
            self.warnings = ()
        logger.warning("biorouter profile switched from '%s' to '%s' by %s: %s", entry.previous, profile, by, reason)
        return entry

    def summary(self) -> SessionSummary:
        with self._lock:
            return SessionSummary(
                profile=self.profile,
                selected=self.selected,
                warnings=self.warnings,
                started_at=self.started_at,
                uptime_s=round((datetime.now(UTC) - self.started_at).total_seconds(), 3),
                totals=self._totals.model_copy(),
                by_task={k: v.model_copy() for k, v in sorted(self._by_task.items())},
                by_group={k: v.model_copy() for k, v in sorted(self._by_group.items())},
                switches=tuple(self._switches),
            )

    def log_summary(self) -> None:
        """One log line at shutdown: what this session served."""
        summary = self.summary()
        totals = summary.totals
        groups = ", ".join(f"{g}={c.requests}" for g, c in summary.by_group.items()) or "-"
        logger.info(
            "biorouter session summary: profile '%s' (%s), up %.0f s, %d requests, %d errors, %d refused, "
            "$%.4f; by group: %s",
            summary.profile,
            summary.selected,
            summary.uptime_s,
            totals.requests,
            totals.errors,
            totals.refused,
            totals.cost_usd,
            groups,
        )


def response_cost(source: Mapping[str, Any] | None) -> float:
    """LiteLLM's computed cost of a call (``response_cost``), 0 when it has none."""
    value = (source or {}).get("response_cost")
    return float(value) if isinstance(value, (int, float)) else 0.0
