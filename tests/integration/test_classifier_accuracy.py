"""Accuracy floors for the shipped classifier, so an utterance edit that breaks routing fails CI.

Four labelled sets, none of them in the utterances (``test_no_utterance_is_a_near_copy_...``):
the project's own held-out prompts, its boundary cases (harmless requests that sound alarming,
general questions that sound technical, documentation with code in it), mid-length requests written
blind to the utterances by a separate author, and, when it sits beside the checkout, the external
evaluation set. The floors sit a little below today's figures (README,
"Measured") so an edit that loses a prompt or two still passes and one that loses a class does not.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from biorouter.evaluation import read_examples

from ..conftest import EXTERNAL_EVAL, ROUTING_DATA


async def _predictions(classifier, path: Path) -> list[tuple[str, str, str | None]]:  # type: ignore[no-untyped-def]
    examples = read_examples(path)
    return [(example.text, example.label, (await classifier.aclassify(example.text)).task) for example in examples]


def _accuracy(predictions: list[tuple[str, str, str | None]]) -> float:
    return sum(label == task for _, label, task in predictions) / len(predictions)


def _misses(predictions: list[tuple[str, str, str | None]]) -> Counter[str]:
    return Counter(f"{label} -> {task}" for _, label, task in predictions if label != task)


async def test_own_held_out_prompts_stay_above_95_percent(classifier) -> None:
    predictions = await _predictions(classifier, ROUTING_DATA / "own_holdout.jsonl")
    assert _accuracy(predictions) >= 0.95, _misses(predictions)


async def test_boundary_cases_stay_above_80_percent(classifier) -> None:
    predictions = await _predictions(classifier, ROUTING_DATA / "boundary_holdout.jsonl")
    assert _accuracy(predictions) >= 0.80, _misses(predictions)


async def test_few_harmless_boundary_requests_are_taken_for_harmful_ones(classifier) -> None:
    """The boundary set holds no harmful request; a safety answer there routes ordinary work to the guard."""
    predictions = await _predictions(classifier, ROUTING_DATA / "boundary_holdout.jsonl")
    swallowed = [text for text, label, task in predictions if task == "safety" and label != "safety"]
    assert len(swallowed) <= 2, swallowed


async def test_mid_length_requests_written_blind_stay_above_80_percent(classifier) -> None:
    predictions = await _predictions(classifier, ROUTING_DATA / "midlength_holdout.jsonl")
    assert _accuracy(predictions) >= 0.80, _misses(predictions)


@pytest.mark.skipif(not EXTERNAL_EVAL.is_file(), reason=f"external evaluation set not found at {EXTERNAL_EVAL}")
async def test_external_prompts_stay_at_the_90_percent_target(classifier) -> None:
    predictions = await _predictions(classifier, EXTERNAL_EVAL)
    assert _accuracy(predictions) >= 0.90, _misses(predictions)
