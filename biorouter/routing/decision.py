"""The Decision: what biorouter chose for one request, and why.

It is the one record every entry point shares: the proxy turns it into response headers and a
log line, the Python API attaches it to the response, the CLI prints it. It never holds the
prompt, only a hash of the judged text, so it can be logged and stored safely.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from biorouter.errors import KeptLocalError
from biorouter.routing.complexity import ComplexityEstimate
from biorouter.routing.plans import StrategyOutcome, StrategyPlan

__all__ = ["AUTO_MODELS", "BudgetView", "Decision", "RequestKind", "Signals"]

# What a client sends as "model" to ask biorouter to choose.
AUTO_MODELS = frozenset({"auto", "biorouter/auto", "biorouter"})

Mode = Literal["routed", "default", "passthrough"]
RequestKind = Literal["chat", "embedding"]


class Signals(BaseModel):
    """Everything ``decide()`` judges, gathered by an adapter; plain data, no LiteLLM types."""

    model_config = ConfigDict(frozen=True)

    requested_model: str
    kind: RequestKind = "chat"  # what the client asked for
    text_sha256: str = ""
    task: str | None = None  # classifier's best task
    confidence: float = 0.0
    scores: Mapping[str, float] = Field(default_factory=dict)
    classifier_error: str | None = None  # set when classification failed: fail soft
    sensitive_rules: tuple[str, ...] = ()  # detector rules that fired (names only, never the text)
    task_hint: str | None = None  # a client's own task label (metadata.biorouter_task)
    # Context length: the prompt's tokens (None when it is too short to matter: see
    # adapter.prompt_tokens) and the client's max_tokens (None: the route's default, else 0).
    prompt_tokens: int | None = None
    max_tokens: int | None = None
    # Two-stage routing: the request's complexity, estimated when its route lists tiers.
    complexity: ComplexityEstimate | None = None
    # Orchestration: the strategy the client asked for (metadata.biorouter_strategy), and whether it streams.
    strategy_request: str | None = None
    stream: bool = False
    # Which classifier gave the task: "embedding", or "lexical" when the encoder was down (degraded
    # mode, and why in classifier_fallback); None when nothing was classified.
    classifier_source: Literal["embedding", "lexical"] | None = None
    classifier_fallback: str | None = None


class BudgetView(BaseModel):
    """What the ledger says before this request: its cost per candidate group, and whether cloud spend is off."""

    model_config = ConfigDict(frozen=True)

    estimates: Mapping[str, float | None] = Field(default_factory=dict, description="group -> USD; None unknown")
    cloud_blocked: str | None = Field(default=None, description="why cloud groups are off (a budget reached)")
    warnings: tuple[str, ...] = ()


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    profile: str
    mode: Mode
    group: str
    fallbacks: tuple[str, ...] = ()
    task: str | None = None
    confidence: float | None = None
    scores: Mapping[str, float] = Field(default_factory=dict)
    local_only: bool = False
    local_only_rules: tuple[str, ...] = Field(
        default=(), description="why the request is local-only: 'route:<task>' or 'content:<detector rule>'"
    )
    local_only_reason: str | None = None
    estimated_cost_usd: float | None = Field(default=None, description="for the chosen group, before the call")
    budget_warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = Field(default_factory=dict, description="max_tokens/temperature if unset")
    text_sha256: str = ""
    tier: str | None = Field(default=None, description="complexity tier (low/medium/high) of a tiered route")
    complexity: float | None = Field(default=None, description="the complexity score (0..1) behind the tier")
    generation: int | None = Field(default=None, description="the configuration generation that decided (reloads)")
    degraded: tuple[str, ...] = Field(
        default=(), description="what ran in a degraded mode for this request, e.g. 'ledger:unavailable'"
    )
    strategy: StrategyPlan | None = Field(default=None, description="race/ensemble/cascade plan; None: one call")
    strategy_outcome: StrategyOutcome | None = Field(default=None, description="what the strategy did, after it ran")

    def headers(self) -> dict[str, str]:
        """Response headers that make the decision visible to clients."""
        headers = {
            "x-biorouter-profile": self.profile,
            "x-biorouter-mode": self.mode,
            "x-biorouter-group": self.group,
            "x-biorouter-task": self.task or "",
            "x-biorouter-confidence": "" if self.confidence is None else f"{self.confidence:.4f}",
            "x-biorouter-fallbacks": ",".join(self.fallbacks),
            "x-biorouter-local-only": "true" if self.local_only else "false",
            "x-biorouter-local-only-rules": ",".join(self.local_only_rules),
        }
        if self.budget_warnings:
            headers["x-biorouter-budget"] = "; ".join(self.budget_warnings)
        if self.tier is not None:
            headers["x-biorouter-tier"] = self.tier
        if self.generation is not None:
            headers["x-biorouter-generation"] = str(self.generation)
        if self.degraded:
            headers["x-biorouter-degraded"] = ",".join(self.degraded)
        if self.strategy is not None:
            headers["x-biorouter-strategy"] = self.strategy.kind
            if self.strategy.notes:
                headers["x-biorouter-strategy-notes"] = "; ".join(self.strategy.notes)
        if self.strategy_outcome is not None:
            headers.update(self.strategy_outcome.headers())
        return headers

    def log_line(self) -> str:
        """One line for the proxy log: compact, greppable, no prompt text; budget warnings when there are any."""
        fields = self.log_fields()
        if self.budget_warnings:
            fields["budget_warnings"] = list(self.budget_warnings)
        return "biorouter decision " + json.dumps(fields, sort_keys=True)

    def log_fields(self) -> dict[str, Any]:
        """What every log of a decision shows (the proxy's line, the debug JSON): never the prompt."""
        return {
            "profile": self.profile,
            "mode": self.mode,
            "task": self.task,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "group": self.group,
            "fallbacks": list(self.fallbacks),
            "local_only": self.local_only,
            "local_only_rules": list(self.local_only_rules),
            "reasons": list(self.reasons),
            "text_sha256": self.text_sha256[:16],
            "tier": self.tier,
            "generation": self.generation,
            "degraded": list(self.degraded),
        }

    def kept_local(self, cause: BaseException) -> KeptLocalError:
        """The refusal for this local-only decision after LiteLLM could not serve it locally."""
        first_line = (str(cause).splitlines() or [type(cause).__name__])[0]
        return KeptLocalError(
            f"request kept local ({self.local_only_reason}); no local deployment could serve it: {first_line}",
            rules=self.local_only_rules,
        )

    def summary(self) -> dict[str, Any]:
        """The JSON-able record (as ``biorouter route --json`` prints it)."""
        return self.model_dump(mode="json")
