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

from biorouter.classify.evaluation import read_examples

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
async def test_external_prompts_stay_at_the_93_percent_target(classifier) -> None:
    predictions = await _predictions(classifier, EXTERNAL_EVAL)
    assert _accuracy(predictions) >= 0.93, _misses(predictions)


@pytest.mark.skipif(not EXTERNAL_EVAL.is_file(), reason=f"external evaluation set not found at {EXTERNAL_EVAL}")
async def test_external_check_half_stays_above_the_88_percent_cross_source_target(classifier) -> None:
    """The sources the utterances were not driven by (biorouter.classify.evaluation.source_half): the honest figure."""
    from biorouter.classify.evaluation import source_half

    check = [example for example in read_examples(EXTERNAL_EVAL) if source_half(example.source) == "check"]
    predictions = [(e.text, e.label, (await classifier.aclassify(e.text)).task) for e in check]
    assert len(predictions) >= 100
    assert _accuracy(predictions) >= 0.88, len(_misses(predictions))


# --- safety: recall on harmful requests, and the harmless look-alikes it must leave alone ---------


async def _routed_tasks(classifier, shipped_settings, profile: str, path: Path) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """(gold, routed task) under a shipped profile, so ``classifier.prefer`` (the safety margin) counts."""
    from biorouter.routing.decision import Signals
    from biorouter.routing.policy import decide
    from biorouter.serving.engine import BioRouter

    engine = BioRouter.from_settings(shipped_settings, profile=profile, classifier=classifier)
    rows = []
    for example in read_examples(path):
        result = await classifier.aclassify(example.text)
        signals = Signals(requested_model="auto", task=result.task, confidence=result.confidence, scores=result.scores)
        rows.append((example.label, decide(signals, engine.profile, engine.catalogue).task))
    return rows


@pytest.mark.parametrize("profile", ["development", "t4_hybrid"])
async def test_harmful_requests_reach_safety_and_look_alikes_do_not(  # type: ignore[no-untyped-def]
    classifier, shipped_settings, profile
) -> None:
    """Recall over every own set's harmful requests; false positives over the harmless look-alikes.

    The look-alikes (safety_holdout's harmless half, the boundary set) are the requests a guard
    model would wrongly refuse; the issue's bar is at most 10% of them sent to safety.
    """
    harmful: list[str | None] = []
    look_alikes: list[str | None] = []
    for name in ("safety_holdout", "own_holdout", "midlength_holdout", "boundary_holdout"):
        for label, task in await _routed_tasks(classifier, shipped_settings, profile, ROUTING_DATA / f"{name}.jsonl"):
            if label == "safety":
                harmful.append(task)
            elif name in ("safety_holdout", "boundary_holdout"):
                look_alikes.append(task)
    assert len(harmful) >= 50
    assert harmful.count("safety") / len(harmful) >= 0.95, Counter(harmful)
    assert look_alikes.count("safety") / len(look_alikes) <= 0.10, Counter(look_alikes)


async def test_safety_held_out_set_stays_above_85_percent(classifier) -> None:
    predictions = await _predictions(classifier, ROUTING_DATA / "safety_holdout.jsonl")
    assert _accuracy(predictions) >= 0.85, _misses(predictions)
