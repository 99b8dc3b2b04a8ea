"""How hard a request is: the second stage of two-stage routing (task first, then tier).

A route that lists ``tiers`` (low / medium / high) sends simple requests of its task to a cheap
group and demanding ones to a strong group. The estimate blends four signals, each scaled to 0..1,
with weights a profile sets (``complexity:``):

- **length**: words of the user's text, on a log scale between ``short`` and ``long``;
- **structure**: fenced code blocks, numbered or bulleted steps, several questions: a request
  that lists five requirements is more work than one that asks one thing;
- **indicators**: phrases that mark demanding work ("pipeline", "optimise", "end-to-end") or
  simple work ("one-liner", "quick"), matched case-insensitively as substrings;
- **examples**: similarity of the request's embedding (the classifier's, already computed) to
  tiered example requests in ``utterances/complexity/{low,medium,high}.txt``.

A signal that cannot be had (no embedding: the classifier failed or sensitive text must not reach
a cloud encoder) drops out and the others share its weight. Everything here is pure and cheap
(regular expressions and one small matrix product), so it runs on the event loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "TIERS",
    "ComplexityConfig",
    "ComplexityEstimate",
    "TierExamples",
    "Weights",
    "estimate_complexity",
    "read_tier_examples",
]

Tier = Literal["low", "medium", "high"]
TIERS: tuple[Tier, ...] = ("low", "medium", "high")

DEFAULT_HIGH = (
    "pipeline",
    "workflow",
    "optimi",  # optimise, optimize, optimisation
    "end-to-end",
    "end to end",
    "scalab",
    "distributed",
    "parallelis",
    "paralleliz",
    "architecture",
    "refactor",
    "multi-step",
    "multiple steps",
    "production",
    "benchmark",
    "trade-off",
    "tradeoff",
    "in depth",
    "in-depth",
    "comprehensive",
    "design a",
    "integrate",
    "orchestrat",
    "cluster",
    "slurm",
)
DEFAULT_LOW = (
    "one-line",  # also matches one-liner
    "one liner",
    "one line",
    "single line",
    "quick",
    "simple",
    "short",
    "small",
    "tiny",
    "just ",
    "briefly",
    "rename",
    "what is the syntax",
    "how do i",
)

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_STEP = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•]|step\s+\d+\b)\s+\S", re.MULTILINE | re.IGNORECASE)
_WORD = re.compile(r"\w+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    """How much each signal counts; they need not sum to 1 (they are normalised)."""

    length: float = Field(default=0.2, ge=0, le=10)
    structure: float = Field(default=0.15, ge=0, le=10)
    indicators: float = Field(default=0.3, ge=0, le=10)
    examples: float = Field(default=0.35, ge=0, le=10)

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if self.length + self.structure + self.indicators + self.examples <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class Indicators(_Strict):
    high: tuple[str, ...] = Field(default=DEFAULT_HIGH, description="phrases of demanding work (substrings)")
    low: tuple[str, ...] = Field(default=DEFAULT_LOW, description="phrases of simple work (substrings)")


class LengthScale(_Strict):
    short: int = Field(default=8, ge=1, le=100_000, description="words at or below: length signal 0")
    long: int = Field(default=250, ge=2, le=1_000_000, description="words at or above: length signal 1")

    @model_validator(mode="after")
    def _ordered(self) -> LengthScale:
        if self.long <= self.short:
            raise ValueError(f"long ({self.long}) must be above short ({self.short})")
        return self


class Thresholds(_Strict):
    medium: float = Field(default=0.3, ge=0, le=1, description="score at or above: tier medium")
    high: float = Field(default=0.5, ge=0, le=1, description="score at or above: tier high")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.high < self.medium:
            raise ValueError(f"high ({self.high}) must not be below medium ({self.medium})")
        return self


class ComplexityConfig(_Strict):
    """A profile's complexity estimator (``complexity:``); used by routes that list ``tiers``."""

    indicators: Indicators = Field(default_factory=Indicators)
    length_words: LengthScale = Field(default_factory=LengthScale)
    weights: Weights = Field(default_factory=Weights)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    examples: str | None = Field(
        default="utterances/complexity",
        description="folder (relative to the biorouter home) with low.txt, medium.txt, high.txt example "
        "requests; null turns the embedding signal off",
    )


class ComplexityEstimate(BaseModel):
    """The estimate for one request: its score, tier, and each signal (for the Decision's reasons)."""

    model_config = ConfigDict(frozen=True)

    score: float
    tier: Tier
    signals: Mapping[str, float] = Field(default_factory=dict, description="signal -> 0..1 (absent: unavailable)")
    matched: tuple[str, ...] = Field(default=(), description="indicator phrases found (high ones prefixed '+')")
    words: int = 0

    def explain(self) -> str:
        parts = ", ".join(f"{name} {value:.2f}" for name, value in self.signals.items())
        found = f"; indicators: {', '.join(self.matched)}" if self.matched else ""
        return f"complexity {self.score:.2f} -> tier {self.tier} ({parts}; {self.words} words{found})"


def _length_signal(words: int, scale: LengthScale) -> float:
    if words <= scale.short:
        return 0.0
    return min(1.0, math.log(words / scale.short) / math.log(scale.long / scale.short))


def _structure_signal(text: str) -> float:
    fences = len(_FENCE.findall(text)) // 2
    steps = len(_STEP.findall(text))
    questions = max(0, text.count("?") - 1)
    points = fences * 1.0 + min(steps, 8) * 0.4 + min(questions, 4) * 0.3
    return min(1.0, points / 3.0)


def _indicator_signal(text: str, indicators: Indicators) -> tuple[float, tuple[str, ...]]:
    folded = text.casefold()
    high = [phrase for phrase in indicators.high if phrase.casefold() in folded]
    low = [phrase for phrase in indicators.low if phrase.casefold() in folded]
    value = 0.5 + 0.25 * min(len(high), 2) - 0.25 * min(len(low), 2)
    return max(0.0, min(1.0, value)), (*(f"+{p.strip()}" for p in high), *(f"-{p.strip()}" for p in low))


def estimate_complexity(text: str, config: ComplexityConfig, examples: float | None = None) -> ComplexityEstimate:
    """Score ``text`` in 0..1 and name its tier; ``examples`` is the embedding signal when there is one."""
    words = len(_WORD.findall(text))
    indicator, matched = _indicator_signal(text, config.indicators)
    signals = {
        "length": _length_signal(words, config.length_words),
        "structure": _structure_signal(text),
        "indicators": indicator,
    }
    if examples is not None:
        signals["examples"] = max(0.0, min(1.0, examples))
    weights = config.weights.model_dump()
    total = sum(weights[name] for name in signals)
    score = sum(weights[name] * value for name, value in signals.items()) / total if total > 0 else 0.0
    tier: Tier = "high" if score >= config.thresholds.high else "medium" if score >= config.thresholds.medium else "low"
    rounded = {name: round(value, 3) for name, value in signals.items()}
    return ComplexityEstimate(score=round(score, 4), tier=tier, signals=rounded, matched=matched, words=words)


def read_tier_examples(folder: Path) -> dict[Tier, list[str]]:
    """``low.txt``, ``medium.txt``, ``high.txt`` of ``folder``: one example a line, ``#`` comments skipped."""
    found: dict[Tier, list[str]] = {}
    for tier in TIERS:
        path = folder / f"{tier}.txt"
        if path.is_file():
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            found[tier] = [line for line in lines if line and not line.startswith("#")]
    return found


class TierExamples:
    """Example requests of each tier, embedded once: turns a request vector into the examples signal.

    The signal is the expected tier (low 0, medium 0.5, high 1) under a softmax over the mean of
    each tier's three nearest examples; a request as close to "high" examples as to "low" ones
    scores about 0.5, which the other signals then decide.
    """

    TOP = 3
    TEMPERATURE = 0.05

    def __init__(self, vectors: Mapping[Tier, np.ndarray]) -> None:
        self._tiers = [tier for tier in TIERS if tier in vectors and len(vectors[tier])]
        self._vectors = [np.asarray(vectors[tier], dtype=np.float32) for tier in self._tiers]
        self._values = np.array([TIERS.index(tier) / 2 for tier in self._tiers], dtype=np.float32)

    @property
    def usable(self) -> bool:
        return len(self._tiers) >= 2

    @classmethod
    def embed(
        cls, examples: Mapping[Tier, Sequence[str]], embed_documents: Callable[[Sequence[str]], np.ndarray]
    ) -> TierExamples:
        """Embed every tier's examples with ``embed_documents`` (texts -> unit-length rows)."""
        return cls({tier: np.asarray(embed_documents(list(lines))) for tier, lines in examples.items() if lines})

    def signal(self, query: np.ndarray) -> float | None:
        if not self.usable:
            return None
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        closeness = []
        for rows in self._vectors:
            similarities = rows @ vector
            top = np.sort(similarities)[-self.TOP :]
            closeness.append(float(top.mean()))
        logits = np.array(closeness) / self.TEMPERATURE
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        return float(weights @ self._values)
