"""``biorouter tune``: proposes per-task thresholds from labelled prompts and writes them into a profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from biorouter.cli.main import main
from biorouter.routing.profiles import load_profile
from biorouter.settings import Settings

from ..conftest import ROOT

# Prompts written for this test (not from any evaluation set).
LABELLED = [
    ("Write a Python function that returns the reverse complement of a DNA string", "code_generation"),
    ("Write a bash script that renames every .fq file in a folder to .fastq", "code_generation"),
    ("Implement a Python class for a FIFO queue with push and pop", "code_generation"),
    ("Write an R function that computes the median of each column of a matrix", "code_generation"),
    ("Write a SQL query that counts samples per project", "code_generation"),
    ("What is the variance of 1, 2, 3, 4 and 5?", "math_statistics"),
    ("Compute the probability of two heads in three fair coin tosses", "math_statistics"),
    ("Is a t-test or a Mann-Whitney test better for 8 skewed samples per group?", "math_statistics"),
    ("What is the derivative of x squared times sine x?", "math_statistics"),
    ("How many ways can 5 samples be ordered on a plate row?", "math_statistics"),
    ("What does the BRCA2 protein do in DNA repair?", "biomedical"),
    ("Which symptoms suggest a vitamin B12 deficiency?", "biomedical"),
]


def tmp_home(tmp_path: Path, shipped_settings: Settings) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    for folder in ("utterances", "profiles", "litellm_config"):
        shutil.copytree(ROOT / folder, home / folder)
    shutil.copy(ROOT / "biorouter.yaml", home / "biorouter.yaml")
    env = {**os.environ, "BIOROUTER_HOME": str(home), "BIOROUTER_CACHE_DIR": str(shipped_settings.cache_path)}
    return home, env


def test_tune_prints_a_proposal_and_writes_it_into_the_profile(
    tmp_path: Path, shipped_settings: Settings, classifier: object
) -> None:
    home, env = tmp_home(tmp_path, shipped_settings)
    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": label}) for t, label in LABELLED) + "\n")
    command = [sys.executable, "-m", "biorouter", "tune", "--data", str(data), "--profile", "development"]
    shown = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    proposal = json.loads(shown.stdout)
    assert proposal["examples"] == len(LABELLED)
    assert sum(row["examples"] for row in proposal["tasks"]) == len(LABELLED)  # each counted under its top task
    assert all(row["correct_after"] >= row["correct_before"] for row in proposal["tasks"])
    assert 0 <= proposal["group_accuracy_before"] <= proposal["group_accuracy_after"] <= 1
    margin = proposal["safety_margin"]  # no harmful request in the data: nothing to win back, margin 0
    assert (margin["task"], margin["margin"], margin["recovered"], margin["task_examples"]) == ("safety", 0.0, 0, 0)

    before = (home / "profiles" / "development.yaml").read_text()
    written = subprocess.run([*command, "--write"], env=env, capture_output=True, text=True, timeout=300)
    assert written.returncode == 0, written.stderr
    assert "classifier:\n  min_confidence: 0.1\n  per_task:" in written.stdout
    profile = load_profile(home / "profiles" / "development.yaml")
    assert dict(profile.classifier.per_task) == proposal["per_task"]
    assert dict(profile.classifier.prefer) == {"safety": 0.05}  # --write leaves the safety margin alone
    assert "  prefer: {safety: 0.0}" in written.stdout
    after = (home / "profiles" / "development.yaml").read_text()
    assert after.splitlines()[:3] == before.splitlines()[:3]  # the header comments are kept
    assert profile.routes == load_profile(ROOT / "profiles" / "development.yaml").routes


def test_tune_refuses_a_nonsensical_minimum_support(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "one.jsonl"
    data.write_text('{"text": "hello", "label": "intent_parsing"}\n')
    assert main(["tune", "--data", str(data), "--min-support", "0"]) == 1
    assert "--min-support must be at least 1" in capsys.readouterr().err
