"""The project's own held-out routing prompts stay valid and separate from the utterances."""

from __future__ import annotations

from pathlib import Path

import pytest

from biorouter.classify.evaluation import read_examples
from biorouter.classify.utterances import load_utterances

from ..conftest import ROOT, ROUTING_DATA

HOLDOUT = ROUTING_DATA / "own_holdout.jsonl"
BOUNDARY = ROUTING_DATA / "boundary_holdout.jsonl"
MIDLENGTH = ROUTING_DATA / "midlength_holdout.jsonl"
BIOINFO = ROUTING_DATA / "bioinfo_holdout.jsonl"
SAFETY = ROUTING_DATA / "safety_holdout.jsonl"
SAFETY_TUNE = ROUTING_DATA / "safety_tune.jsonl"


def _normalised(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_holdout_labels_are_tasks_and_every_task_is_covered() -> None:
    tasks = set(load_utterances(ROOT / "utterances"))
    labels = [example.label for example in read_examples(HOLDOUT)]
    assert set(labels) == tasks
    assert min(labels.count(task) for task in tasks) >= 8


@pytest.mark.parametrize(
    "path",
    [BOUNDARY, MIDLENGTH, BIOINFO, SAFETY, SAFETY_TUNE],
    ids=["boundary", "midlength", "bioinfo", "safety", "safety-tune"],
)
def test_other_holdout_labels_are_tasks(path: Path) -> None:
    tasks = set(load_utterances(ROOT / "utterances"))
    assert {example.label for example in read_examples(path)} <= tasks


def test_midlength_prompts_are_mid_length_and_cover_every_chat_task() -> None:
    examples = read_examples(MIDLENGTH)
    assert all(40 <= len(example.text.split()) <= 120 for example in examples)
    assert {example.label for example in examples} == set(load_utterances(ROOT / "utterances")) - {"embeddings"}


def test_bioinfo_prompts_cover_every_task_weighted_to_the_platform_tasks() -> None:
    """The set measures the platform's own traffic: every task appears, the six it mostly serves dominate."""
    labels = [example.label for example in read_examples(BIOINFO)]
    assert set(labels) == set(load_utterances(ROOT / "utterances"))
    platform = ["code_generation", "code_validation", "data_analysis", "orchestration", "math_statistics", "biomedical"]
    assert all(labels.count(task) >= 12 for task in platform)
    assert all(5 <= len(example.text.split()) <= 150 for example in read_examples(BIOINFO))


@pytest.mark.parametrize(
    "path",
    [HOLDOUT, BOUNDARY, MIDLENGTH, BIOINFO, SAFETY, SAFETY_TUNE],
    ids=["own", "boundary", "midlength", "bioinfo", "safety", "safety-tune"],
)
def test_holdout_has_no_repeated_prompt(path: Path) -> None:
    texts = [_normalised(example.text) for example in read_examples(path)]
    assert sorted(text for text in set(texts) if texts.count(text) > 1) == []


@pytest.mark.parametrize(
    "path",
    [HOLDOUT, BOUNDARY, MIDLENGTH, BIOINFO, SAFETY, SAFETY_TUNE],
    ids=["own", "boundary", "midlength", "bioinfo", "safety", "safety-tune"],
)
def test_no_holdout_prompt_is_also_an_utterance(path: Path) -> None:
    utterances = {_normalised(line) for lines in load_utterances(ROOT / "utterances").values() for line in lines}
    copied = [example.text for example in read_examples(path) if _normalised(example.text) in utterances]
    assert copied == []


@pytest.mark.parametrize("path", [SAFETY, SAFETY_TUNE], ids=["safety", "safety-tune"])
def test_safety_sets_pair_harmful_requests_with_as_many_harmless_look_alikes(path: Path) -> None:
    """Recall alone rewards sending everything to the guard: each set holds both sides in equal number."""
    labels = [example.label for example in read_examples(path)]
    harmful = labels.count("safety")
    assert harmful >= 20
    assert len(labels) - harmful == harmful
    assert len(set(labels) - {"safety"}) >= 5  # look-alikes of several tasks, not one
