"""Orchestration strategies: what a route (or a request) may ask for, and the plan ``decide()`` attaches.

A route answers with one call by default (``single``). A profile can ask instead for:

- ``race``: the same request to N groups at once; the first *good* answer wins, the others are cancelled;
- ``ensemble``: N groups answer; a vote picks the answer (exact or normalised text match, or a
  majority per JSON field), or a judge group picks the best one for free text;
- ``cascade``: the groups one after the other, cheapest first as the route lists them; the next is
  tried only when an answer fails a check (empty, a refusal, invalid JSON when JSON was asked, a
  named validator, a low self-reported confidence).

The plain data (:class:`StrategySpec`, the profile's YAML; :class:`StrategyPlan`, what ``decide()`` attaches
to the Decision; :class:`StrategyOutcome`) lives in :mod:`biorouter.routing.plans`, below the Decision and the
profiles that hold it; here is :func:`attach_plan`, the pure planning step at the end of ``decide()``. The plan only
ever names groups ``decide()`` already allowed (governance, budgets, context windows), so a
local-only request fans out to local groups only. Running a plan is :mod:`biorouter.serving.orchestrate`'s
job; judging answers is :mod:`biorouter.routing.answer_checks`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from biorouter.errors import RequestError, described, quoted_label
from biorouter.routing.plans import (
    STRATEGY_KEY,
    STRATEGY_KINDS,
    StrategyPlan,
    StrategySpec,
    VoteMethod,
)

if TYPE_CHECKING:
    from biorouter.routing.decision import BudgetView, Decision, Signals
    from biorouter.routing.profiles import Profile, Route

__all__ = ["attach_plan", "requested_strategy", "with_strategy_signals"]


def requested_strategy(request: Mapping[str, Any]) -> str | None:
    """The strategy kind a client asked for in ``metadata.biorouter_strategy``, if any (400 when malformed)."""
    for key in ("metadata", "litellm_metadata"):
        metadata = request.get(key)
        if isinstance(metadata, Mapping) and metadata.get(STRATEGY_KEY) is not None:
            value = metadata[STRATEGY_KEY]
            if not isinstance(value, str) or value not in STRATEGY_KINDS:
                raise RequestError(
                    f"metadata.{STRATEGY_KEY} must be one of {', '.join(STRATEGY_KINDS)}, not {described(value)}"
                )
            return value
    return None


def _chosen_spec(signals: Signals, profile: Profile, route: Route) -> tuple[StrategySpec, Literal["route", "request"]]:
    """The route's strategy, or the one the request asked for when the profile allows it."""
    own: StrategySpec = route.strategy
    asked = signals.strategy_request
    if asked is None or asked == own.kind:
        return own, "route"
    if asked == "single":
        return StrategySpec(), "request"
    spec = profile.strategies.spec_for(asked)
    if spec is None:
        allowed = sorted({"single", own.kind, *(s.kind for s in profile.strategies.requestable)})
        raise RequestError(
            f"metadata.{STRATEGY_KEY} {quoted_label(asked)} is not allowed by profile '{profile.name}' for this route "
            f"(allowed: {', '.join(allowed)}; see strategies.requestable)"
        )
    return spec, "request"


def _single(decision: Decision, note: str, source: Literal["route", "request"]) -> Decision:
    plan = StrategyPlan(kind="single", groups=(decision.group,), source=source, notes=(note,))
    return decision.model_copy(update={"strategy": plan})


def _trim_to_limit(
    groups: list[str], judge: str | None, profile: Profile, budget: BudgetView | None, notes: list[str]
) -> tuple[list[str], float | None]:
    """Drop the last groups while the whole fan-out's estimate is over ``max_per_request_usd``."""
    estimates = budget.estimates if budget is not None else {}

    def total(members: list[str]) -> float | None:
        known = [estimates.get(g) for g in (*members, *([judge] if judge else []))]
        return None if budget is None else round(sum(v or 0.0 for v in known), 6)

    limit = profile.costs.max_per_request_usd
    while limit is not None and len(groups) > 1 and (total(groups) or 0.0) > limit:
        dropped = groups.pop()
        notes.append(f"'{dropped}' left out: the fan-out's estimate is over max_per_request_usd ${limit:.2f}")
    return groups, total(groups)


def attach_plan(
    decision: Decision,
    signals: Signals,
    profile: Profile,
    route: Route,
    budget: BudgetView | None = None,
) -> Decision:
    """``decision`` with its strategy plan (pure; the last step of ``decide()``).

    The plan draws its groups from ``(decision.group, *decision.fallbacks)`` only: the groups
    ``decide()`` kept after governance, budgets and context windows. A plan that cannot fan out
    (streaming, one allowed group) becomes ``single`` with a note saying why. A route with the
    default ``single`` strategy and no request for another gets no plan at all (``strategy: None``).
    """
    if signals.kind != "chat":
        return decision
    spec, source = _chosen_spec(signals, profile, route)
    if spec.kind == "single":
        return decision if source == "route" else _single(decision, "the request asked for 'single'", source)
    if signals.stream:
        return _single(decision, f"streaming request: '{spec.kind}' falls back to single", source)
    allowed = [decision.group, *decision.fallbacks]
    notes: list[str] = []
    judge = spec.judge
    vote: VoteMethod | None = spec.vote if spec.kind == "ensemble" else None
    if vote == "judge" and judge not in allowed:
        notes.append(f"judge '{judge}' is not allowed for this request: normalised vote instead")
        judge, vote = None, "normalised"
    if spec.kind == "cascade":
        groups = allowed[: spec.n] if spec.n else allowed
    else:
        n = spec.n or 2
        candidates = [g for g in allowed if g != judge] or allowed
        if n > len(candidates):
            notes.append(f"{n} groups asked, {len(candidates)} allowed")
        groups = candidates[:n]
    groups, estimate = _trim_to_limit(groups, judge if spec.kind == "ensemble" else None, profile, budget, notes)
    if len(groups) < 2:
        return _single(decision, f"'{spec.kind}' needs two allowed groups, only '{groups[0]}' is: single", source)
    plan = StrategyPlan(
        kind=spec.kind,
        groups=tuple(groups),
        vote=vote,
        judge=judge if spec.kind == "ensemble" else None,
        checks=spec.checks,
        validators=spec.validators,
        min_confidence=spec.min_confidence,
        source=source,
        estimated_cost_usd=estimate,
        notes=tuple(notes),
    )
    return decision.model_copy(update={"strategy": plan})


def with_strategy_signals(signals: Signals, request: Mapping[str, Any]) -> Signals:
    """``signals`` with the strategy the request asked for and whether it streams (unchanged when neither)."""
    asked = requested_strategy(request)
    stream = request.get("stream") is True
    if asked is None and not stream:
        return signals
    return signals.model_copy(update={"strategy_request": asked, "stream": stream})
