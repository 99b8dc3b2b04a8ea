"""Judging answers for the orchestration strategies: checks, built-in validators and votes.

Everything here is a pure function over answer texts, so the rules are tested without any model.

Checks (a profile lists them under a route's ``strategy: checks:``) say an answer is *bad*: a race
does not accept it as the winner and a cascade escalates past it.

- ``empty``: no text (only whitespace);
- ``refusal``: the answer opens by declining ("I can't help with that", "I'm sorry, but I cannot…");
- ``invalid_json``: the request asked for JSON (``response_format``) and the answer does not parse;
- ``low_confidence``: the answer reports its own confidence ("confidence: 0.3", "Confidence: 30%")
  below the strategy's ``min_confidence``; an answer that reports none passes.

Validators are a closed registry (:data:`VALIDATORS`): a profile names them, it never supplies code.

Votes pick one answer of an ensemble. ``exact`` and ``normalised`` group identical answers
(normalised: case, whitespace and punctuation ignored) and take the largest group; ``json_fields``
takes the majority value of every field of the JSON answers and picks the answer agreeing with most
of them. **Ties go to the answer of the group listed first in the plan** (the route's own group
before its fallbacks), so the route's preferred model wins when the ensemble splits evenly.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "VALIDATORS",
    "failed_check",
    "judge_messages",
    "normalise",
    "parse_judge_pick",
    "vote",
    "wants_json",
]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry,? but |sorry,? but |unfortunately,? )?"
    r"(?:i|we) (?:can ?not|can't|cannot|won't|will not|(?:am|'m|are|'re) (?:unable|not able) to)"
    r" (?:help|assist|comply|provide|answer|do that|fulfil|fulfill|support)",
    re.IGNORECASE,
)
_CONFIDENCE = re.compile(r"\bconfidence\s*[:=]\s*(\d+(?:\.\d+)?)\s*(%?)", re.IGNORECASE)


def _json_text(text: str) -> str:
    """The JSON inside an answer: a fenced block when there is one, else the whole text."""
    fenced = _FENCE.search(text)
    return fenced.group(2) if fenced else text


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(_json_text(text))
    except ValueError:
        return False
    return True


def _python_syntax(text: str) -> str | None:
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    for index, code in enumerate(blocks or [text]):
        try:
            ast.parse(code)
        except SyntaxError as e:
            where = f"code block {index + 1}" if blocks else "the answer"
            return f"python_syntax: {where} does not parse (line {e.lineno}: {e.msg})"
    return None


VALIDATORS: Mapping[str, Callable[[str], str | None]] = {
    "json": lambda text: None if _parses_as_json(text) else "json: the answer is not valid JSON",
    "non_empty": lambda text: None if text.strip() else "non_empty: the answer is empty",
    "python_syntax": _python_syntax,
}
"""Built-in validators by name: the answer text -> why it fails, or None."""


def wants_json(request: Mapping[str, Any]) -> bool:
    """Whether the client asked for a JSON answer (``response_format`` json_object or json_schema)."""
    fmt = request.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else getattr(fmt, "type", None)
    return kind in ("json_object", "json_schema")


def self_reported_confidence(text: str) -> float | None:
    """The confidence an answer states about itself (0..1), if it states one."""
    found = _CONFIDENCE.search(text)
    if found is None:
        return None
    value = float(found.group(1))
    return value / 100 if found.group(2) or value > 1 else value


def failed_check(
    text: str,
    *,
    checks: Sequence[str],
    validators: Sequence[str] = (),
    json_asked: bool = False,
    min_confidence: float = 0.5,
) -> str | None:
    """Why ``text`` is not a good answer (the first check or validator it fails), or None when it passes."""
    if "empty" in checks and not text.strip():
        return "empty: the answer has no text"
    if "refusal" in checks and _REFUSAL.search(text[:300]):
        return "refusal: the answer declines"
    if "invalid_json" in checks and json_asked and not _parses_as_json(text):
        return "invalid_json: JSON was asked and the answer does not parse"
    if "low_confidence" in checks:
        confidence = self_reported_confidence(text)
        if confidence is not None and confidence < min_confidence:
            return f"low_confidence: the answer reports {confidence:.2f}, below {min_confidence:.2f}"
    for name in validators:
        problem = VALIDATORS[name](text)
        if problem is not None:
            return problem
    return None


def normalise(text: str) -> str:
    """Case, whitespace and punctuation ignored: ``' The answer is 42. '`` == ``'the answer is 42'``."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _majority(keys: Sequence[str]) -> tuple[int, int]:
    """Index of the first answer of the largest group of equal keys, and that group's size (ties: earliest)."""
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    best = max(range(len(keys)), key=lambda i: (counts[keys[i]], -i))
    return best, counts[keys[best]]


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(_json_text(text))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_field_vote(texts: Sequence[str]) -> tuple[int, str] | None:
    objects = [_json_object(t) for t in texts]
    parsed = [i for i, o in enumerate(objects) if o is not None]
    if not parsed:
        return None
    fields = sorted({key for i in parsed for key in objects[i] or {}})
    majority: dict[str, str] = {}
    for field in fields:
        values = [json.dumps((objects[i] or {}).get(field), sort_keys=True) for i in parsed]
        majority[field] = values[_majority(values)[0]]

    def agreement(i: int) -> int:
        obj = objects[i] or {}
        return sum(json.dumps(obj.get(field), sort_keys=True) == value for field, value in majority.items())

    best = max(parsed, key=lambda i: (agreement(i), -i))
    return best, f"json_fields: agrees with the majority on {agreement(best)} of {len(fields)} field(s)"


def vote(texts: Sequence[str], method: str) -> tuple[int, str]:
    """The winning answer's index in ``texts`` (plan order) and why; ties go to the earliest answer."""
    if not texts:
        raise ValueError("no answers to vote on")
    if method == "json_fields":
        found = _json_field_vote(texts)
        if found is not None:
            return found
        method = "normalised"  # no answer is a JSON object: compare them as text
    keys = [t.strip() if method == "exact" else normalise(t) for t in texts]
    best, size = _majority(keys)
    if size == 1 and len(texts) > 1:
        return best, f"{method}: no two answers agree; the first group's answer wins the tie"
    tie = sum(1 for key in set(keys) if keys.count(key) == size) > 1
    why = f"{method}: {size} of {len(texts)} answers agree"
    return best, why + ("; tie broken by plan order" if tie else "")


def judge_messages(question: str, answers: Sequence[str]) -> list[dict[str, str]]:
    """The prompt asking a judge group to pick the best of ``answers`` by number."""
    listing = "\n\n".join(f"Answer {i + 1}:\n{answer}" for i, answer in enumerate(answers))
    return [
        {
            "role": "system",
            "content": "You compare candidate answers to a question. Reply with only the number of the best answer.",
        },
        {"role": "user", "content": f"Question:\n{question}\n\n{listing}\n\nThe number of the best answer:"},
    ]


def parse_judge_pick(text: str, count: int) -> int | None:
    """The 0-based index the judge picked, or None when its reply names no candidate."""
    found = re.search(r"\b(\d+)\b", text)
    if found is None:
        return None
    number = int(found.group(1))
    return number - 1 if 1 <= number <= count else None
