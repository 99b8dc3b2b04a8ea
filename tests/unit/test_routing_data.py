"""The project's own held-out routing prompts stay valid and separate from the utterances."""

from __future__ import annotations

from pathlib import Path

import pytest

from biorouter.evaluation import read_examples
from biorouter.utterances import load_utterances

from ..conftest import ROOT

HOLDOUT = ROOT / "tests" / "data" / "routing" / "own_holdout.jsonl"
BOUNDARY = ROOT / "tests" / "data" / "routing" / "boundary_holdout.jsonl"


def _normalised(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_holdout_labels_are_tasks_and_every_task_is_covered() -> None:
    tasks = set(load_utterances(ROOT / "utterances"))
    labels = [example.label for example in read_examples(HOLDOUT)]
    assert set(labels) == tasks
    assert min(labels.count(task) for task in tasks) >= 8


def test_boundary_labels_are_tasks() -> None:
    tasks = set(load_utterances(ROOT / "utterances"))
    assert {example.label for example in read_examples(BOUNDARY)} <= tasks


@pytest.mark.parametrize("path", [HOLDOUT, BOUNDARY], ids=["own", "boundary"])
def test_no_holdout_prompt_is_also_an_utterance(path: Path) -> None:
    utterances = {_normalised(line) for lines in load_utterances(ROOT / "utterances").values() for line in lines}
    copied = [example.text for example in read_examples(path) if _normalised(example.text) in utterances]
    assert copied == []
