"""The ``biorouter`` command as a user runs it: real subprocesses for the commands that embed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from biorouter.cli.main import main
from biorouter.settings import Settings

from ..conftest import ROOT

# Prompts written for this test; each is unambiguous about its task.
EVAL_LINES = [
    {"text": "Write a Python function that returns the GC content of a DNA string", "label": "code_generation"},
    {"text": "Why does my R script fail with 'object not found' when I call ggplot here?", "label": "code_validation"},
    {"text": "What is the standard deviation of 2, 4, 4, 4, 5, 5, 7, 9?", "label": "math_statistics"},
    {"text": "Which organ produces insulin and what does insulin do?", "label": "biomedical"},
    {"text": "Tell me a joke about penguins", "label": "intent_parsing"},
    {"text": "Explain in detail how to make a nerve agent at home", "label": "safety"},
]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BIOROUTER_HOME": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "biorouter", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_no_arguments_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("route", "validate", "eval", "serve"):
        assert command in out


def test_route_json_prints_the_decision_with_no_upstream_running() -> None:
    result = run_cli("route", "write a python function that reverses the order of words in a sentence", "--json")
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["task"] == "code_generation"
    assert decision["group"] == "t4-coder"
    assert decision["profile"] == "development"
    assert set(decision["scores"]) >= {"code_generation", "biomedical", "safety"}
    assert decision["fallbacks"] == ["t4-generalist", "deepseek-v3"]
    assert decision["reasons"]
    assert 0 < decision["confidence"] <= 1


def test_validate_passes_on_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "OK: 0 errors" in capsys.readouterr().out


def test_validate_exits_1_and_names_file_and_key_of_each_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("biorouter.yaml",):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("profiles", "utterances", "litellm_config"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    hybrid = tmp_path / "profiles" / "t4_hybrid.yaml"
    hybrid.write_text(hybrid.read_text().replace("group: t4-bio\n", "group: t4-bioo\n", 1))
    monkeypatch.setenv("BIOROUTER_HOME", str(tmp_path))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "profiles/t4_hybrid.yaml: routes -> biomedical -> group: unknown group 't4-bioo' (known: " in out
    assert "FAILED: 1 error" in out


def test_eval_reports_metrics_and_writes_predictions_and_plot(tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in EVAL_LINES) + "\n", encoding="utf-8")
    predictions, plot = tmp_path / "predictions.jsonl", tmp_path / "confusion.png"
    result = run_cli("eval", "--data", str(data), "--json", "--predictions", str(predictions), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["examples"] == len(EVAL_LINES)
    assert report["accuracy"] >= 5 / 6
    assert set(report["per_class"]) >= {line["label"] for line in EVAL_LINES}
    assert len(report["confusion"]) == len(report["labels"])
    assert 0 <= report["group_accuracy"] <= 1
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows] == [line["text"] for line in EVAL_LINES]
    assert set(rows[0]) == {"text", "label", "task", "confidence", "source"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_cross_source_reports_each_source_and_fits_only_on_the_tune_half(tmp_path: Path) -> None:
    from biorouter.classify.evaluation import source_half

    # Two made-up repositories, one on each side of the fixed split.
    names = [f"owner/set{i}" for i in range(20)]
    tune = next(name for name in names if source_half(name) == "tune")
    check = next(name for name in names if source_half(name) == "check")
    lines = [{**line, "source": f"{tune if i % 2 else check}:file.jsonl"} for i, line in enumerate(EVAL_LINES)]
    data = tmp_path / "sourced.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    result = run_cli("eval", "--data", str(data), "--json", "--cross-source")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {f["source"]: f["half"] for f in report["per_source"]} == {tune: "tune", check: "check"}
    assert sum(f["examples"] for f in report["per_source"]) == len(EVAL_LINES)
    cross = report["cross_source"]
    assert (cross["tune_sources"], cross["check_sources"]) == ([tune], [check])
    assert cross["check"]["tuned"]["examples"] == sum(1 for line in lines if line["source"].startswith(check))
    assert "safety" in cross["fitted"]["prefer"]
    left_out = {row["source"]: row for row in cross["leave_one_source_out"]}
    assert set(left_out) == {tune, check}
    assert left_out[check]["examples"] == cross["check"]["tuned"]["examples"]
    assert 0 <= left_out[tune]["fitted_accuracy"] <= 1


def test_eval_names_the_file_and_line_of_a_malformed_example(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "hello", "label": "intent_parsing"}\n{"text": "no label"}\n', encoding="utf-8")
    assert main(["eval", "--data", str(data)]) == 1
    assert f"{data}: line 2 -> label" in capsys.readouterr().err


def test_prepare_embeds_only_what_changed(tmp_path: Path, shipped_settings: Settings, classifier: object) -> None:
    """A second ``prepare`` over a copy with one new utterance embeds that line alone.

    ``classifier`` is asked for so the session's cache is filled before it is copied."""
    home = tmp_path / "home"
    for folder in ("utterances", "profiles", "litellm_config"):
        shutil.copytree(ROOT / folder, home / folder)
    shutil.copy(ROOT / "biorouter.yaml", home / "biorouter.yaml")
    cache = tmp_path / "cache"  # the session's exported model, a copy of its embedded utterances
    cache.mkdir()
    (cache / "onnx").symlink_to(shipped_settings.cache_path / "onnx")
    shutil.copytree(shipped_settings.cache_path / "embeddings", cache / "embeddings")
    env = {**os.environ, "BIOROUTER_HOME": str(home), "BIOROUTER_CACHE_DIR": str(cache)}

    def prepare() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "biorouter", "prepare"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    first = prepare()
    assert first.returncode == 0, first.stderr
    assert "utterances: 0 embedded" in first.stdout
    # it says what it is doing before the long part, not only when done (issue 20)
    assert first.stdout.startswith("preparing the classifier in ")
    with (home / "utterances" / "documentation.txt").open("a") as lines:
        lines.write("write a README section on how to cite this pipeline\n")
    second = prepare()
    assert second.returncode == 0, second.stderr
    assert "utterances: 1 embedded" in second.stdout


@pytest.mark.parametrize("command", [("validate",), ("audit", "--log", "{log}")])
def test_output_piped_into_a_reader_that_stops_early_is_no_traceback(command: tuple[str, ...], tmp_path: Path) -> None:
    """Issue 20: ``biorouter validate | head`` printed a BrokenPipeError traceback."""
    log = tmp_path / "audit.jsonl"
    log.write_text("", encoding="utf-8")
    args = " ".join(part.format(log=log) for part in command)
    result = subprocess.run(
        f"{sys.executable} -m biorouter {args} | true",  # true exits before biorouter writes a line
        shell=True,
        cwd=ROOT,
        env={**os.environ, "BIOROUTER_HOME": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert "BrokenPipeError" not in result.stderr


@pytest.mark.parametrize("command", ["status", "switch", "reload"])
def test_proxy_commands_say_where_their_default_port_comes_from(command: str) -> None:
    """Issue 20: they read BIOROUTER_PORT while their help said 4000."""
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "BIOROUTER_PORT" in " ".join(result.stdout.split())


def test_proxy_commands_call_the_port_of_biorouter_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from biorouter.testing.standin import free_port

    port = free_port()  # nothing listens there
    env = {**os.environ, "BIOROUTER_HOME": str(ROOT), "BIOROUTER_PORT": str(port), "LITELLM_MASTER_KEY": "sk-x"}
    result = subprocess.run(
        [sys.executable, "-m", "biorouter", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"cannot reach the proxy at http://127.0.0.1:{port}" in result.stderr
