"""``biorouter profiles`` and ``biorouter select`` as a person runs them.

In-process tests replace ``biorouter.hardware.resources.detect`` with a hand-built snapshot: it stands in
for hardware this machine lacks (T4 and H100 GPUs, healthy vLLM servers). The subprocess tests at
the end run the real detection on this machine, which has no GPU, no SLURM and no cloud key.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import biorouter.hardware.resources
from biorouter.cli.main import main
from biorouter.cli.select import write_profile_setting
from biorouter.errors import ConfigError
from biorouter.hardware.resources import GPU, EndpointHealth, GPUInfo, HostInfo, Resources
from biorouter.settings import load_settings

from ..conftest import ROOT

SHIPPED_ORDER = ["h100_local", "l4_t4_combined", "t4_hybrid", "cloud_only", "development"]


def snapshot(gpus: int = 0, *, healthy: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Resources:
    """``gpus`` Tesla T4s, the ``healthy`` groups answering, every other local group refusing."""
    down = ("t4-generalist", "t4-coder", "h100-large", "l4-coder")
    return Resources(
        detected_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.2,
        host=HostInfo(hostname="test"),
        gpu=GPUInfo(
            gpus=tuple(GPU(index=i, name="Tesla T4", model="T4", memory_gb=15.0) for i in range(gpus)),
            error=None if gpus else "nvidia-smi not found",
        ),
        cloud_keys={name: True for name in keys},
        endpoints=(
            *(EndpointHealth(group=g, deployment=f"{g}-a", healthy=True, status=200) for g in healthy),
            *(
                EndpointHealth(group=g, deployment=f"{g}-a", error="connection refused")
                for g in down
                if g not in healthy
            ),
        ),
    )


T4_NODE = snapshot(4, healthy=("t4-generalist", "t4-coder"), keys=("DEEPSEEK_API_KEY",))


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, home: Path) -> Callable[[Resources], list[float]]:
    """In ``home``, make detection return ``resources`` (hardware this machine lacks); gives detect's timeouts."""

    def use(resources: Resources) -> list[float]:
        timeouts: list[float] = []

        def fake_detect(settings: object = None, *, timeout_s: float = 1.0, **_: object) -> Resources:
            timeouts.append(timeout_s)
            return resources

        # raising=False: the real detect() may not exist in a checkout where it is still being written
        monkeypatch.setattr(biorouter.hardware.resources, "detect", fake_detect, raising=False)
        return timeouts

    return use


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a copy of biorouter.yaml set to ``profile: auto``, and the shipped profiles, utterances, config."""
    text = (ROOT / "biorouter.yaml").read_text(encoding="utf-8")
    (tmp_path / "biorouter.yaml").write_text(re.sub(r"(?m)^profile:.*$", "profile: auto", text), encoding="utf-8")
    for folder in ("profiles", "utterances", "litellm_config"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    monkeypatch.setenv("BIOROUTER_HOME", str(tmp_path))
    return tmp_path


def answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """What a person types, as a pipe delivers it (not a terminal)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


# --- biorouter profiles ---------------------------------------------------------------------------


def test_profiles_lists_every_profile_by_priority_with_verdict_reasons_and_description(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str]
) -> None:
    machine(T4_NODE)
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("this machine: GPUs: 4× T4; no SLURM; cloud keys set: DEEPSEEK_API_KEY; ")
    assert [out.index(f"\n{name}  (priority") for name in SHIPPED_ORDER] == sorted(
        out.index(f"\n{name}  (priority") for name in SHIPPED_ORDER
    )
    assert "t4_hybrid  (priority 30)  FITS  <- recommended\n" in out
    assert "h100_local  (priority 50)  does not fit\n" in out
    assert "    unmet: needs 1 H100 GPU with 79 GB+; found 4× T4 15 GB" in out
    assert "    unmet: needs h100-large healthy (connection refused)" in out
    assert "    met:   t4-generalist healthy" in out
    assert "    A single H100 runs a strong 72B model for every chat task;" in out
    assert "active: profile 't4_hybrid' selected automatically" in out


def test_profiles_marks_a_configured_profile_and_warns_about_its_unmet_needs(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    monkeypatch.setenv("BIOROUTER_PROFILE", "h100_local")
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "h100_local  (priority 50)  does not fit  <- configured in BIOROUTER_PROFILE\n" in out
    assert "t4_hybrid  (priority 30)  FITS  <- recommended\n" in out
    assert "active: profile 'h100_local' chosen explicitly" in out
    assert "warning: profile 'h100_local' was chosen explicitly but needs h100-large healthy" in out
    assert "recommended for this machine: t4_hybrid" in out


def test_profiles_json_gives_each_fit_the_recommendation_and_the_selection(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str]
) -> None:
    timeouts = machine(T4_NODE)
    assert main(["profiles", "--json", "--timeout", "0.5"]) == 0
    assert timeouts == [0.5]
    payload = json.loads(capsys.readouterr().out)
    assert [fit["profile"] for fit in payload["fits"]] == SHIPPED_ORDER
    hybrid = payload["fits"][2]
    assert hybrid["ok"] is True
    assert hybrid["reasons"] == []
    assert "1 T4 GPU with 15 GB+: found 4" in hybrid["met"]
    assert hybrid["description"].startswith("Local 7B models on T4 GPUs")
    assert payload["recommended"] == "t4_hybrid"
    assert payload["selection"] == {"profile": "t4_hybrid", "explicit": False, "warnings": []}
    assert payload["error"] is None


def test_profiles_shows_an_unknown_configured_profile_without_failing(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(snapshot())
    monkeypatch.setenv("BIOROUTER_PROFILE", "t5_cluster")
    assert main(["profiles", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["configured"] == "t5_cluster"
    assert payload["selection"] is None
    assert "unknown profile 't5_cluster' (available: cloud_only, development" in payload["error"]
    assert payload["recommended"] == "development"


def test_profiles_rejects_a_timeout_that_is_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["profiles", "--timeout", "0"])
    assert excinfo.value.code == 2
    assert "must be above 0 seconds" in capsys.readouterr().err


# --- biorouter select -----------------------------------------------------------------------------


def test_select_recommends_the_best_fit_explains_it_and_says_how_to_activate_it(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str]
) -> None:
    machine(T4_NODE)
    assert main(["select"]) == 0
    out = capsys.readouterr().out
    assert "recommended: t4_hybrid (priority 30): highest priority that fits this machine" in out
    assert "    met:   1 T4 GPU with 15 GB+: found 4" in out
    assert "    h100_local (priority 50) does not fit: needs 1 H100 GPU with 79 GB+" in out
    assert "    l4_t4_combined (priority 40) does not fit: needs l4-coder healthy (connection refused)" in out
    assert "export BIOROUTER_PROFILE=t4_hybrid" in out
    assert "'profile: t4_hybrid' in " in out


def test_select_exits_1_with_every_reason_when_no_profile_fits(
    machine: Callable[[Resources], list[float]], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "profiles").unlink()
    (home / "profiles").mkdir()
    for name in ("h100_local", "t4_hybrid", "cloud_only"):
        shutil.copy(ROOT / "profiles" / f"{name}.yaml", home / "profiles")
    machine(snapshot())
    assert main(["select"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("biorouter select: no profile fits this machine;")
    assert "  t4_hybrid (priority 30): needs 1 T4 GPU with 15 GB+; found no GPU (nvidia-smi not found)" in captured.err
    assert "  cloud_only (priority 10): needs DEEPSEEK_API_KEY set" in captured.err


def test_interactive_lists_the_profiles_numbered_and_an_empty_answer_accepts_the_recommendation(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "\n")
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "  1. h100_local (priority 50): does not fit: needs 1 H100 GPU" in out
    assert "  3. t4_hybrid (priority 30) [recommended]: fits" in out
    assert "  5. development (priority 0): fits" in out
    assert "choose a profile [1-5 or a name, Enter = t4_hybrid]: \n" in out
    assert "selected: t4_hybrid" in out


def test_interactive_end_of_input_accepts_the_recommendation(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "")
    assert main(["select", "--interactive"]) == 0
    assert "selected: t4_hybrid" in capsys.readouterr().out


@pytest.mark.parametrize(("typed", "chosen"), [("5\n", "development"), ("development\n", "development")])
def test_interactive_picks_a_fitting_profile_by_number_or_name_without_asking_again(
    typed: str,
    chosen: str,
    machine: Callable[[Resources], list[float]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, typed)
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "[y/N]" not in out
    assert f"selected: {chosen}" in out
    assert f"export BIOROUTER_PROFILE={chosen}" in out


def test_interactive_pick_that_does_not_fit_shows_unmet_needs_and_needs_confirmation(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "1\ny\n")
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "warning: profile 'h100_local' was chosen explicitly but needs 1 H100 GPU with 79 GB+" in out
    assert (
        "warning: profile 'h100_local' was chosen explicitly but needs h100-large healthy (connection refused)" in out
    )
    assert "use 'h100_local' although it does not fit? [y/N]: y\n" in out
    assert "selected: h100_local" in out


def test_interactive_declined_pick_asks_again(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "1\nn\n4\n")
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "'h100_local' not chosen" in out
    assert "selected: cloud_only" in out


def test_interactive_invalid_answers_ask_again_then_give_up_after_three(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "x\n0\n9\n3\n")
    assert main(["select", "--interactive"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("is not one of the choices: enter 1-5 or a profile name") == 3
    assert "selected" not in captured.out
    assert captured.err == "biorouter select: nothing selected: 3 answers picked no profile\n"


def test_interactive_invalid_answer_then_a_valid_one_picks_it(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "t5\n4\n")
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "'t5' is not one of the choices" in out
    assert "selected: cloud_only" in out


def test_interactive_end_of_input_after_a_declined_pick_accepts_the_recommendation(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the help says: end of input accepts the recommendation, also after a pick that was not confirmed."""
    machine(T4_NODE)
    answer(monkeypatch, "1\n")  # h100_local does not fit; the confirmation meets the end of input
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "'h100_local' not chosen" in out
    assert "end of input: taking the recommendation 't4_hybrid'" in out
    assert "selected: t4_hybrid" in out


def test_interactive_lets_a_person_pick_when_no_profile_fits(
    machine: Callable[[Resources], list[float]],
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (home / "profiles").unlink()
    (home / "profiles").mkdir()
    for name in ("t4_hybrid", "cloud_only"):
        shutil.copy(ROOT / "profiles" / f"{name}.yaml", home / "profiles")
    machine(snapshot())
    answer(monkeypatch, "2\ny\n")
    assert main(["select", "--interactive"]) == 0
    out = capsys.readouterr().out
    assert "no profile fits this machine: pick one below" in out
    assert "choose a profile [1-2 or a name]: " in out
    assert "selected: cloud_only" in out
    answer(monkeypatch, "")
    assert main(["select", "--interactive"]) == 1
    assert "biorouter select: no profile fits this machine;" in capsys.readouterr().err


def test_interactive_json_keeps_prompts_off_stdout(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    answer(monkeypatch, "1\ny\n")
    assert main(["select", "--interactive", "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["profile"] == "h100_local"
    assert payload["recommended"] == "t4_hybrid"
    assert len(payload["warnings"]) == 2
    assert payload["written"] is None
    assert [fit["profile"] for fit in payload["fits"]] == SHIPPED_ORDER
    assert "choose a profile" in captured.err


def test_select_says_when_the_choice_is_already_the_configured_profile(
    machine: Callable[[Resources], list[float]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine(T4_NODE)
    monkeypatch.setenv("BIOROUTER_PROFILE", "t4_hybrid")
    assert main(["select"]) == 0
    out = capsys.readouterr().out
    assert "already active (BIOROUTER_PROFILE names it)" in out
    assert "export" not in out


def test_write_warns_that_biorouter_profile_still_overrides_the_file(
    machine: Callable[[Resources], list[float]],
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine(T4_NODE)
    monkeypatch.setenv("BIOROUTER_PROFILE", "development")
    assert main(["select", "--write"]) == 0
    assert "note: BIOROUTER_PROFILE=development is set and overrides biorouter.yaml" in capsys.readouterr().out
    assert load_settings(home).profile == "t4_hybrid"


# --- --write --------------------------------------------------------------------------------------


def test_write_sets_the_profile_line_and_keeps_every_other_line(
    machine: Callable[[Resources], list[float]],
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine(T4_NODE)
    before = (home / "biorouter.yaml").read_text(encoding="utf-8").splitlines()
    answer(monkeypatch, "5\n")
    assert main(["select", "--interactive", "--write"]) == 0
    out = capsys.readouterr().out
    assert f"wrote 'profile: development' to {home / 'biorouter.yaml'}" in out
    assert "export BIOROUTER_PROFILE" not in out
    after = (home / "biorouter.yaml").read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == 1
    assert changed[0][0].startswith("profile:")
    assert changed[0][1] == "profile: development"
    assert load_settings(home).profile == "development"


def test_write_without_a_profile_line_exits_1_and_leaves_the_file_alone(
    machine: Callable[[Resources], list[float]], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine(T4_NODE)
    settings_file = home / "biorouter.yaml"
    text = "".join(line for line in settings_file.read_text().splitlines(True) if not line.startswith("profile:"))
    settings_file.write_text(text)
    assert main(["select", "--write"]) == 1
    assert "biorouter.yaml: profile: has no top-level 'profile:' line; edit it by hand: profile: t4_hybrid" in (
        capsys.readouterr().err
    )
    assert settings_file.read_text() == text


def test_write_keeps_a_trailing_comment_and_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "biorouter.yaml"
    path.write_bytes(b"version: 1\r\n# which one\r\nprofile: auto   # or a name\r\nclassifier:\r\n  profile: x\r\n")
    write_profile_setting(path, "t4_hybrid")
    assert path.read_bytes() == (
        b"version: 1\r\n# which one\r\nprofile: t4_hybrid   # or a name\r\nclassifier:\r\n  profile: x\r\n"
    )


def test_write_refuses_two_top_level_profile_lines(tmp_path: Path) -> None:
    path = tmp_path / "biorouter.yaml"
    path.write_text("profile: auto\nprofile: development\n")
    with pytest.raises(ConfigError, match="more than one top-level 'profile:' line"):
        write_profile_setting(path, "t4_hybrid")


# --- the real commands on this machine (no GPU, no SLURM, no cloud key) ---------------------------


def bare_environment(home: Path) -> dict[str, str]:
    """This process's (already isolated) environment, without SLURM or vLLM settings, nvidia-smi or sinfo."""
    path = os.pathsep.join(
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not any((Path(folder) / tool).exists() for tool in ("nvidia-smi", "sinfo", "squeue"))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "VLLM_")) and not k.endswith("_API_KEY")}
    return {**env, "PATH": path, "BIOROUTER_HOME": str(home)}


def run_cli(*args: str, home: Path = ROOT, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "biorouter", *args],
        cwd=home,
        env=bare_environment(home),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_real_profiles_selects_development_on_a_machine_without_gpus_or_keys() -> None:
    result = run_cli("profiles", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [fit["profile"] for fit in payload["fits"]] == SHIPPED_ORDER
    assert [fit["profile"] for fit in payload["fits"] if fit["ok"]] == ["development"]
    assert payload["recommended"] == "development"
    assert payload["selection"]["profile"] == "development"
    cloud = payload["fits"][3]
    assert cloud["reasons"] == ["needs DEEPSEEK_API_KEY set"]


def test_real_profiles_text_says_why_each_gpu_profile_does_not_fit() -> None:
    result = run_cli("profiles")
    assert result.returncode == 0, result.stderr
    assert "development  (priority 0)  FITS  <- recommended" in result.stdout
    assert "    unmet: needs 1 H100 GPU with 79 GB+; found no GPU" in result.stdout


@pytest.mark.parametrize(
    ("stdin", "code", "expected"),
    [
        ("", 0, "selected: development"),
        ("\n", 0, "selected: development"),
        ("4\ny\n", 0, "selected: cloud_only"),
        ("2\n", 0, "selected: development"),  # l4_t4_combined does not fit; end of input takes the recommendation
        ("x\nx\nx\n", 1, "nothing selected: 3 answers picked no profile"),
    ],
)
def test_real_interactive_select_reads_its_answer_from_a_pipe(stdin: str, code: int, expected: str) -> None:
    result = run_cli("select", "--interactive", stdin=stdin)
    assert result.returncode == code, result.stderr
    assert expected in (result.stdout if code == 0 else result.stderr)
    assert "recommended: development (priority 0)" in result.stdout


def test_real_select_write_updates_a_copy_of_biorouter_yaml(home: Path) -> None:
    result = run_cli("select", "--interactive", "--write", home=home, stdin="4\ny\n")
    assert result.returncode == 0, result.stderr
    assert "warning: profile 'cloud_only' was chosen explicitly but needs DEEPSEEK_API_KEY set" in result.stdout
    assert load_settings(home).profile == "cloud_only"
    original = (ROOT / "biorouter.yaml").read_text(encoding="utf-8")
    written = (home / "biorouter.yaml").read_text(encoding="utf-8")
    assert [line for line in written.splitlines() if line.startswith("profile:")] == ["profile: cloud_only"]
    assert [line for line in original.splitlines() if not line.startswith("profile:")] == [
        line for line in written.splitlines() if not line.startswith("profile:")
    ]
