"""Debug routing logs: one JSON line per decision when ``BIOROUTER_DEBUG_ROUTING=1``.

When a route looks wrong, the operator needs the whole picture of each decision — the task
scores behind it, the rules that kept it local, the budget warnings, where the time went —
without reading any prompt. Each line goes to the ``biorouter.routing`` logger at INFO and holds
the request id, the profile, the mode, the task and its confidence, the top task scores, the group
and its fallbacks, the reasons, the local-only rules, the budget warnings and timings in
milliseconds. It never holds request text, nor anything the sensitivity detector matched (only
the names of the rules that fired), nor an error text from an embeddings server, which could echo
the request.

The proxy gives the logger a handler of its own, so each line on stderr is bare JSON; in Python,
configure ``biorouter.routing`` at INFO to see the lines.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime

from biorouter.routing.decision import Decision

__all__ = ["DEBUG_ENV", "LOGGER_NAME", "enabled", "ensure_handler", "log_decision", "record"]

DEBUG_ENV = "BIOROUTER_DEBUG_ROUTING"
LOGGER_NAME = "biorouter.routing"
TOP_SCORES = 3

logger = logging.getLogger(LOGGER_NAME)

_CLASSIFIER_REASON = "classifier unavailable ("  # policy's reason embeds the error text: kept out


def enabled() -> bool:
    """True when ``BIOROUTER_DEBUG_ROUTING`` is 1 (or true/yes/on); read per decision, a dictionary lookup."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def ensure_handler() -> None:
    """Give ``biorouter.routing`` a bare-message stderr handler (the proxy), so each line parses as JSON."""
    if not enabled() or logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _reason(text: str) -> str:
    if text.startswith(_CLASSIFIER_REASON):
        return "classifier unavailable (error text omitted): default route"
    return text


def record(decision: Decision, *, request_id: str, task_source: str, timings: Mapping[str, float]) -> dict[str, object]:
    """The JSON-able record of one decision: no request text, no detector matches."""
    top = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)[:TOP_SCORES]
    return {
        "event": "biorouter.decision",
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id,
        **decision.log_fields(),
        "task_source": task_source,
        "top_scores": {task: round(score, 4) for task, score in top},
        "estimated_cost_usd": decision.estimated_cost_usd,
        "budget_warnings": list(decision.budget_warnings),
        "reasons": [_reason(reason) for reason in decision.reasons],
        "timings_ms": {name: round(seconds * 1000, 3) for name, seconds in timings.items()},
    }


def log_decision(decision: Decision, *, request_id: str, task_source: str, timings: Mapping[str, float]) -> None:
    """Write the decision's JSON line when debug routing is on; never raises into the request."""
    if not enabled():
        return
    try:
        line = json.dumps(record(decision, request_id=request_id, task_source=task_source, timings=timings))
    except (TypeError, ValueError):
        logging.getLogger("biorouter").warning("biorouter: could not write the debug line of request %s", request_id)
        return
    logger.info(line)
