"""Orchestration strategies: what a route (or a request) may ask for, and the plan ``decide()`` attaches.

A route answers with one call by default (``single``). A profile can ask instead for:

- ``race``: the same request to N groups at once; the first *good* answer wins, the others are cancelled;
- ``ensemble``: N groups answer; a vote picks the answer (exact or normalised text match, or a
  majority per JSON field), or a judge group picks the best one for free text;
- ``cascade``: the groups one after the other, cheapest first as the route lists them; the next is
  tried only when an answer fails a check (empty, a refusal, invalid JSON when JSON was asked, a
  named validator, a low self-reported confidence).

Three pieces live here, all plain data: :class:`StrategySpec` (the profile's YAML, on a route and in
the profile's ``strategies`` section), :class:`StrategyPlan` (what ``decide()`` attaches to the
Decision) and :func:`attach_plan`, the pure planning step at the end of ``decide()``. The plan only
ever names groups ``decide()`` already allowed (governance, budgets, context windows), so a
local-only request fans out to local groups only. Running a plan is :mod:`biorouter.orchestrate`'s
job; judging answers is :mod:`biorouter.answer_checks`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from biorouter.errors import RequestError, described, quoted_label

if TYPE_CHECKING:
    from biorouter.decision import BudgetView, Decision, Signals
    from biorouter.profiles import Profile, Route

__all__ = [
    "CHECK_NAMES",
    "STRATEGY_KEY",
    "VALIDATOR_NAMES",
    "CallRecord",
    "StrategyKind",
    "StrategyOutcome",
    "StrategyPlan",
    "StrategyPolicy",
    "StrategySpec",
    "attach_plan",
    "requested_strategy",
    "with_strategy_signals",
]

STRATEGY_KEY = "biorouter_strategy"  # metadata key a client may set to ask for a strategy

StrategyKind = Literal["single", "race", "ensemble", "cascade"]
VoteMethod = Literal["exact", "normalised", "json_fields", "judge"]
CHECK_NAMES = ("empty", "refusal", "invalid_json", "low_confidence")
CheckName = Literal["empty", "refusal", "invalid_json", "low_confidence"]
VALIDATOR_NAMES = ("json", "non_empty", "python_syntax")
ValidatorName = Literal["json", "non_empty", "python_syntax"]
_KINDS: tuple[str, ...] = ("single", "race", "ensemble", "cascade")


class StrategySpec(BaseModel):
    """How a route's requests are answered: one call, or several groups raced, voted or cascaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: StrategyKind = Field(default="single", description="single | race | ensemble | cascade")
    n: int | None = Field(
        default=None,
        ge=2,
        le=8,
        description="groups called (race, ensemble; default 2) or tried at most (cascade; default all), "
        "taken in the route's order from the groups the request may use",
    )
    vote: VoteMethod = Field(
        default="normalised",
        description="ensemble: exact | normalised (case, spaces, punctuation ignored) | json_fields "
        "(majority per field of a JSON answer) | judge (the judge group picks the best free-text answer)",
    )
    judge: str | None = Field(default=None, min_length=1, description="ensemble with vote: judge: the deciding group")
    checks: tuple[CheckName, ...] = Field(
        default=("empty", "refusal", "invalid_json"),
        description="what makes an answer bad (race: not a winner; cascade: escalate): "
        "empty | refusal | invalid_json (only when JSON was asked) | low_confidence",
    )
    validators: tuple[ValidatorName, ...] = Field(
        default=(), description="built-in validators an answer must pass too: json | non_empty | python_syntax"
    )
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="low_confidence: a self-reported 'confidence: x' below this fails"
    )

    @model_validator(mode="after")
    def _judge_matches_vote(self) -> StrategySpec:
        if self.vote == "judge" and self.judge is None:
            raise ValueError("vote: judge needs a judge group (judge: <group>)")
        if self.judge is not None and self.vote != "judge":
            raise ValueError(f"judge '{self.judge}' is set but vote is '{self.vote}' (set vote: judge)")
        if len(set(self.checks)) != len(self.checks) or len(set(self.validators)) != len(self.validators):
            raise ValueError("checks or validators list a name twice")
        return self


class StrategyPolicy(BaseModel):
    """Which strategies a request may ask for itself (``metadata.biorouter_strategy``); none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requestable: tuple[StrategySpec, ...] = Field(
        default=(),
        description="strategies a request may name by kind, with their settings; a request may always ask "
        "for 'single' or for its route's own strategy",
    )

    @model_validator(mode="after")
    def _one_per_kind(self) -> StrategyPolicy:
        kinds = [spec.kind for spec in self.requestable]
        if len(set(kinds)) != len(kinds):
            raise ValueError("requestable lists a strategy kind twice")
        return self

    def spec_for(self, kind: str) -> StrategySpec | None:
        return next((spec for spec in self.requestable if spec.kind == kind), None)


class StrategyPlan(BaseModel):
    """The strategy ``decide()`` chose for one request: which groups to call, and how to pick the answer."""

    model_config = ConfigDict(frozen=True)

    kind: StrategyKind
    groups: tuple[str, ...] = Field(default=(), description="called in this order; all allowed by decide()")
    vote: VoteMethod | None = None
    judge: str | None = None
    checks: tuple[str, ...] = ()
    validators: tuple[str, ...] = ()
    min_confidence: float = 0.5
    source: Literal["route", "request"] = "route"
    estimated_cost_usd: float | None = Field(default=None, description="the whole fan-out, judge included")
    notes: tuple[str, ...] = ()

    @property
    def fans_out(self) -> bool:
        return self.kind != "single"


def requested_strategy(request: Mapping[str, Any]) -> str | None:
    """The strategy kind a client asked for in ``metadata.biorouter_strategy``, if any (400 when malformed)."""
    for key in ("metadata", "litellm_metadata"):
        metadata = request.get(key)
        if isinstance(metadata, Mapping) and metadata.get(STRATEGY_KEY) is not None:
            value = metadata[STRATEGY_KEY]
            if not isinstance(value, str) or value not in _KINDS:
                raise RequestError(
                    f"metadata.{STRATEGY_KEY} must be one of {', '.join(_KINDS)}, not {described(value)}"
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


class CallRecord(BaseModel):
    """One inner call of a strategy: which group, how it went, what it took and cost."""

    model_config = ConfigDict(frozen=True)

    group: str
    outcome: Literal["good", "bad", "error", "cancelled", "not_called"]
    seconds: float = Field(default=0.0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    detail: str = Field(default="", description="the failed check, the error's first line, or the vote")
    role: Literal["answer", "judge"] = "answer"


class StrategyOutcome(BaseModel):
    """What running a plan did: every call, the winning group and why; totals for the ledger and headers."""

    model_config = ConfigDict(frozen=True)

    kind: StrategyKind
    winner: str | None
    why: str
    calls: tuple[CallRecord, ...] = ()
    seconds: float = Field(default=0.0, ge=0)

    @property
    def cost_usd(self) -> float:
        return round(sum(call.cost_usd for call in self.calls), 9)

    def headers(self) -> dict[str, str]:
        called = [c.group for c in self.calls if c.outcome != "not_called"]
        return {
            "x-biorouter-strategy": self.kind,
            "x-biorouter-winner": self.winner or "",
            "x-biorouter-strategy-why": self.why[:200].encode("ascii", "replace").decode(),  # header-safe
            "x-biorouter-strategy-groups": ",".join(called),
            "x-biorouter-strategy-cost": f"{self.cost_usd:.6f}",
            "x-biorouter-strategy-seconds": f"{self.seconds:.3f}",
        }


def with_strategy_signals(signals: Signals, request: Mapping[str, Any]) -> Signals:
    """``signals`` with the strategy the request asked for and whether it streams (unchanged when neither)."""
    asked = requested_strategy(request)
    stream = request.get("stream") is True
    if asked is None and not stream:
        return signals
    return signals.model_copy(update={"strategy_request": asked, "stream": stream})
