"""The blind sensitivity held-out set stays well formed and true to what its README says it holds.

These checks read only the data, never the detector: the set is measured, not tuned on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

BLIND = Path(__file__).resolve().parents[1] / "data" / "sensitivity" / "blind_holdout.jsonl"
FIELDS = {"text", "sensitive", "category", "kind", "source"}


def _rows() -> list[dict[str, Any]]:
    lines = BLIND.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def test_every_row_has_the_fields_and_a_length_a_prompt_has() -> None:
    rows = _rows()
    assert [sorted(set(row) ^ FIELDS) for row in rows if set(row) != FIELDS] == []
    assert all(isinstance(row["sensitive"], bool) for row in rows)
    assert [len(row["text"]) for row in rows if not 100 <= len(row["text"]) <= 1500] == []


def test_the_set_is_balanced_and_has_no_repeated_text() -> None:
    rows = _rows()
    counts = Counter(row["sensitive"] for row in rows)
    assert abs(counts[True] - counts[False]) <= 10
    assert len({row["text"] for row in rows}) == len(rows)
    # a kind belongs to one side only, so per-kind figures read as recall or as false positives
    sides = {kind: {row["sensitive"] for row in rows if row["kind"] == kind} for kind in {r["kind"] for r in rows}}
    assert {kind: side for kind, side in sides.items() if len(side) != 1} == {}
    assert all(row["category"] == "none" for row in rows if not row["sensitive"])


@pytest.mark.parametrize("category", ["card", "iban"])
def test_financial_identifiers_carry_valid_check_digits(category: str) -> None:
    """Invented numbers must still pass their checksum, or a detector that checks it would be unfairly judged."""
    pattern = (
        r"\b(?:\d[ -]?){14,18}\d\b"
        if category == "card"
        else r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"
    )
    check = (lambda match: _luhn_ok(re.sub(r"\D", "", match))) if category == "card" else _iban_ok
    rows = [row for row in _rows() if row["category"] == category]
    found = [match for row in rows for match in re.findall(pattern, row["text"])]
    assert len(found) >= len(rows) > 0
    assert [match for match in found if not check(match)] == []
