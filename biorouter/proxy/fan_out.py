"""The hook's side of a strategy that fans out: where it sends the request, and how it tells inner calls apart.

:mod:`~biorouter.proxy.strategy` (the custom provider that runs the plan) uses the hook's engine, so what
the hook needs from the strategy lives here, below both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biorouter.routing.decision import Decision
from biorouter.routing.plans import StrategyOutcome
from biorouter.serving.orchestrate import INNER_KEY, OUTCOME_KEY

__all__ = ["STRATEGY_GROUP", "is_inner_call", "outcome_headers", "strategy_arguments"]

STRATEGY_GROUP = "biorouter-strategy"  # model_name of the pseudo deployment in litellm_config


def strategy_arguments(decision: Decision) -> dict[str, Any]:
    """What the hook sets on a request whose plan fans out: the pseudo group, with no retries or fallbacks."""
    if decision.strategy is None or not decision.strategy.fans_out:
        raise ValueError("strategy_arguments needs a Decision whose plan fans out")
    return {
        "model": STRATEGY_GROUP,
        "fallbacks": [],
        "context_window_fallbacks": [],
        "num_retries": 0,  # a failed fan-out is not run again; each inner call retries per the profile
    }


def is_inner_call(kwargs: Mapping[str, Any]) -> bool:
    """Whether a logged call is an inner call of a strategy (its accounting is the strategy's)."""
    params = kwargs.get("litellm_params") or {}
    for metadata in (kwargs.get("metadata"), params.get("metadata") if isinstance(params, Mapping) else None):
        if isinstance(metadata, Mapping) and INNER_KEY in metadata:
            return True
    return False


def outcome_headers(response: Any) -> dict[str, str]:
    """The strategy's ``x-biorouter-*`` headers from a response the handler returned (empty otherwise)."""
    hidden = getattr(response, "_hidden_params", None)
    found = hidden.get(OUTCOME_KEY) if isinstance(hidden, Mapping) else None
    return StrategyOutcome.model_validate(found).headers() if isinstance(found, Mapping) else {}
