"""Strategy plans as plain data: what a route may ask for, the plan a Decision carries, and what running it did.

Apart from :mod:`~biorouter.routing.strategies` (which plans from a Decision and a Profile) because the
Decision and the profiles hold these models: they sit below both, so neither imports the planner back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CHECK_NAMES",
    "STRATEGY_KEY",
    "STRATEGY_KINDS",
    "VALIDATOR_NAMES",
    "CallRecord",
    "StrategyKind",
    "StrategyOutcome",
    "StrategyPlan",
    "StrategyPolicy",
    "StrategySpec",
    "VoteMethod",
]

STRATEGY_KEY = "biorouter_strategy"  # metadata key a client may set to ask for a strategy

StrategyKind = Literal["single", "race", "ensemble", "cascade"]
VoteMethod = Literal["exact", "normalised", "json_fields", "judge"]
CHECK_NAMES = ("empty", "refusal", "invalid_json", "low_confidence")
CheckName = Literal["empty", "refusal", "invalid_json", "low_confidence"]
VALIDATOR_NAMES = ("json", "non_empty", "python_syntax")
ValidatorName = Literal["json", "non_empty", "python_syntax"]
STRATEGY_KINDS: tuple[str, ...] = ("single", "race", "ensemble", "cascade")


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
