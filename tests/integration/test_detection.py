"""Hardware detection on fake machines, and the profile each machine gets.

Every probe is real: fake ``nvidia-smi``/``sinfo``/``squeue`` scripts (biorouter.testing.hardware)
run as subprocesses from a ``PATH`` that holds no real ones, and local endpoints are stand-in
servers on 127.0.0.1 (shared by the module), a port nobody listens on (connection refused) or a
socket that accepts but never answers (timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from biorouter.cli.main import main
from biorouter.hardware.resources import Resources, adetect, detect
from biorouter.hardware.selection import select_profile
from biorouter.routing.profiles import Profile, load_profiles
from biorouter.settings import Settings, load_settings
from biorouter.testing.hardware import FakeGPU, FakeSlurm, NvidiaSmiMode, fake_path, write_fake_tools
from biorouter.testing.standin import StandInFleet, free_port

from ..conftest import ROOT

BASE_VARS = {  # the local groups the shipped profiles need, and where litellm_config reads their api_base
    "h100-large": "VLLM_H100_API_BASE",
    "l4-coder": "VLLM_L4_CODER_API_BASE",
    "t4-generalist": "VLLM_GENERALIST_API_BASE",
}
ALL_BASE_VARS = (
    *BASE_VARS.values(),
    "VLLM_CODER_API_BASE",
    "VLLM_MATH_API_BASE",
    "VLLM_EMBEDDINGS_API_BASE",
    "VLLM_BIO_API_BASE",
    "VLLM_SAFETY_API_BASE",
)
SECRET = "sk-test-not-a-real-key-7f3a"


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInFleet]:
    fleet = StandInFleet(BASE_VARS, log_dir=tmp_path_factory.mktemp("standins"))
    fleet.start()
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A socket that accepts connections (the kernel completes them) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT)


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles(ROOT / "profiles")


class Machine:
    """One fake machine per test: its tools on PATH, its SLURM variables, its endpoints, its keys."""

    def __init__(
        self,
        folder: Path,
        monkeypatch: pytest.MonkeyPatch,
        standins: StandInFleet,
        settings: Settings,
        profiles: dict[str, Profile],
    ) -> None:
        self.folder, self.monkeypatch, self.standins = folder, monkeypatch, standins
        self.settings, self.profiles = settings, profiles
        for name in list(os.environ):
            if name.startswith(("VLLM_", "SLURM_")):
                monkeypatch.delenv(name)
        self.path = fake_path(folder)
        monkeypatch.setenv("PATH", self.path)
        write_fake_tools(folder, "none")

    def set(
        self,
        scenario: str | Iterable[FakeGPU] = "none",
        *,
        nvidia_smi: NvidiaSmiMode = "auto",
        slurm: FakeSlurm | None = None,
        healthy: Iterable[str] = (),
        dead: Iterable[str] = (),
        keys: Iterable[str] = (),
        env: dict[str, str] | None = None,
    ) -> Machine:
        write_fake_tools(
            self.folder,
            scenario if isinstance(scenario, str) else tuple(scenario),
            nvidia_smi=nvidia_smi,
            slurm=slurm,
            hang_s=29.5,
        )
        for group in healthy:
            self.monkeypatch.setenv(BASE_VARS[group], self.standins[group].api_base)
        for group in dead:
            self.monkeypatch.setenv(BASE_VARS[group], f"http://127.0.0.1:{free_port()}/v1")
        for key in keys:
            self.monkeypatch.setenv(key, SECRET)
        for name, value in (env or {}).items():
            self.monkeypatch.setenv(name, value)
        return self

    def detect(self, timeout_s: float = 1.0) -> Resources:
        return detect(self.settings, profiles=self.profiles, timeout_s=timeout_s)

    def selected(self, explicit: str | None = None) -> str:
        return select_profile(self.profiles, self.detect(), explicit).profile


@pytest.fixture
def machine(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    standins: StandInFleet,
    settings: Settings,
    profiles: dict[str, Profile],
) -> Machine:
    return Machine(tmp_path / "bin", monkeypatch, standins, settings, profiles)


# -- the decision tree over the shipped profiles ---------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "healthy", "dead", "keys", "expected"),
    [
        pytest.param("h100", ["h100-large"], [], [], "h100_local", id="h100-healthy"),
        pytest.param("h100", list(BASE_VARS), [], ["DEEPSEEK_API_KEY"], "h100_local", id="h100-everything-up"),
        pytest.param("l4+t4", ["l4-coder", "t4-generalist"], [], [], "l4_t4_combined", id="l4+t4-healthy"),
        pytest.param("l4+t4", ["t4-generalist"], ["l4-coder"], [], "t4_hybrid", id="l4+t4-coder-dead"),
        pytest.param("t4x10", ["t4-generalist"], [], [], "t4_hybrid", id="t4x10-healthy"),
        pytest.param("t4x10", [], ["t4-generalist"], ["DEEPSEEK_API_KEY"], "cloud_only", id="t4x10-dead-with-key"),
        pytest.param("t4x10", [], ["t4-generalist"], [], "development", id="t4x10-dead-no-key"),
        pytest.param("h100", [], ["h100-large"], [], "development", id="h100-dead"),
        pytest.param("none", [], [], ["DEEPSEEK_API_KEY"], "cloud_only", id="none-with-key"),
        pytest.param("none", [], [], [], "development", id="none"),
        pytest.param("none", list(BASE_VARS), [], [], "development", id="none-but-endpoints-up"),
    ],
)
def test_each_machine_selects_the_highest_priority_profile_it_fits(
    machine: Machine, scenario: str, healthy: list[str], dead: list[str], keys: list[str], expected: str
) -> None:
    machine.set(scenario, healthy=healthy, dead=dead, keys=keys)
    assert machine.selected() == expected


def test_a_machine_without_a_driver_selects_like_one_without_nvidia_smi(machine: Machine) -> None:
    machine.set("t4x10", nvidia_smi="no-driver", healthy=["t4-generalist"], keys=["DEEPSEEK_API_KEY"])
    assert machine.selected() == "cloud_only"


def test_an_explicit_profile_is_chosen_with_a_warning_for_every_unmet_need(machine: Machine) -> None:
    machine.set("l4+t4", healthy=["t4-generalist"])
    selection = select_profile(machine.profiles, machine.detect(), explicit="h100_local")
    assert (selection.profile, selection.explicit) == ("h100_local", True)
    assert len(selection.warnings) == 2
    gpu_warning, endpoint_warning = selection.warnings
    assert "H100" in gpu_warning
    assert "L4 22.49 GB" in gpu_warning  # the wording is selection's; the facts come from detection
    assert "h100-large" in endpoint_warning
    assert "VLLM_H100_API_BASE is not set" in endpoint_warning


# -- facts in the snapshot -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "models", "memory", "count"),
    [
        ("t4x10", ("T4",), (15.0,) * 10, 10),
        ("h100", ("H100",), (79.65,), 1),
        ("l4+t4", ("L4", "T4"), (22.49, 15.0), 2),
    ],
)
def test_nvidia_smi_output_becomes_gpu_types_and_memory_in_gib(
    machine: Machine, scenario: str, models: tuple[str, ...], memory: tuple[float, ...], count: int
) -> None:
    gpu = machine.set(scenario).detect().gpu
    assert (gpu.models, gpu.count, gpu.error) == (models, count, None)
    assert tuple(g.memory_gb for g in gpu.gpus) == memory
    assert [g.index for g in gpu.gpus] == list(range(count))


def test_gpu_names_are_normalised_to_the_types_profiles_name(machine: Machine) -> None:
    names = {
        "Tesla T4": "T4",
        "NVIDIA L4": "L4",
        "NVIDIA H100 80GB HBM3": "H100",
        "NVIDIA H100 PCIe": "H100",
        "NVIDIA A100-SXM4-80GB": "A100",
        "NVIDIA A10G": "A10G",
        "NVIDIA L40S": "L40S",
        "Tesla V100-SXM2-16GB": "V100",
        "NVIDIA GeForce RTX 4090": "RTX 4090",
        "NVIDIA RTX A6000": "RTX A6000",
        "Imaginary Accelerator 9000": "Imaginary Accelerator 9000",
    }
    gpu = machine.set([FakeGPU(name, 16384) for name in names]).detect().gpu
    assert [(g.name, g.model) for g in gpu.gpus] == list(names.items())


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("missing", "nvidia-smi not found"),
        (
            "no-driver",
            "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        ),
        ("answer", "nvidia-smi failed (exit 6): No devices were found"),
    ],
)
def test_a_machine_without_gpus_says_why(machine: Machine, mode: NvidiaSmiMode, error: str) -> None:
    gpu = machine.set("none", nvidia_smi=mode).detect().gpu
    assert gpu.gpus == ()
    assert gpu.error is not None
    assert gpu.error.startswith(error)


def test_slurm_outside_a_job_lists_partitions_and_the_default(machine: Machine) -> None:
    slurm = machine.set("none", slurm=FakeSlurm(partitions=("gpu", "cpu", "long"), default="cpu")).detect().slurm
    assert slurm.available
    assert not slurm.in_job
    assert (slurm.partitions, slurm.default_partition, slurm.job_id, slurm.partition) == (
        ("gpu", "cpu", "long"),
        "cpu",
        None,
        None,
    )
    assert slurm.error is None


def test_slurm_job_partition_comes_from_the_environment_when_set(machine: Machine) -> None:
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_PARTITION": "gpu"}
    slurm = machine.set("none", slurm=FakeSlurm(job_partition="long"), env=env).detect().slurm
    assert (slurm.in_job, slurm.job_id, slurm.partition, slurm.error) == (True, "4242", "gpu", None)


def test_slurm_job_partition_is_asked_of_squeue_when_the_environment_lacks_it(machine: Machine) -> None:
    slurm = machine.set("none", slurm=FakeSlurm(job_partition="long"), env={"SLURM_JOB_ID": "4242"}).detect().slurm
    assert (slurm.in_job, slurm.job_id, slurm.partition, slurm.error) == (True, "4242", "long", None)


def test_without_slurm_tools_the_job_is_still_seen_and_the_missing_tools_named(machine: Machine) -> None:
    slurm = machine.set("none", env={"SLURM_JOB_ID": "4242"}).detect().slurm
    assert (slurm.available, slurm.in_job, slurm.partition) == (False, True, None)
    assert slurm.error == "sinfo not found; squeue not found"


def test_an_unreachable_slurm_controller_is_an_error_fact(machine: Machine) -> None:
    slurm = machine.set("none", slurm=FakeSlurm(mode="unreachable")).detect().slurm
    assert not slurm.available
    assert (
        slurm.error
        == "sinfo failed (exit 1): slurm_load_partitions: Unable to contact slurm controller (connect failure)"
    )


def test_endpoint_health_says_why_each_local_group_is_or_is_not_healthy(
    machine: Machine, standins: StandInFleet
) -> None:
    refused = f"http://127.0.0.1:{free_port()}/v1"
    env = {"VLLM_L4_CODER_API_BASE": refused, "VLLM_CODER_API_BASE": standins["l4-coder"].url + "/elsewhere"}
    resources = machine.set("none", healthy=["t4-generalist"], env=env).detect()
    by_group = {e.group: e for e in resources.endpoints}
    assert set(by_group) == {
        "t4-generalist",
        "t4-coder",
        "t4-math",
        "t4-embeddings",
        "t4-bio",
        "t4-safety",
        "h100-large",
        "l4-coder",
    }
    up = by_group["t4-generalist"]
    assert (up.healthy, up.status, up.error, up.api_base) == (True, 200, None, standins["t4-generalist"].api_base)
    assert up.latency_ms is not None
    assert up.latency_ms < 1000
    assert up.deployment == "openai/Qwen/Qwen2.5-7B-Instruct-AWQ"
    assert (by_group["l4-coder"].healthy, by_group["l4-coder"].error) == (False, "connection refused")
    assert (by_group["t4-coder"].status, by_group["t4-coder"].error) == (404, "HTTP 404")
    unset = by_group["t4-bio"]
    assert (unset.healthy, unset.api_base, unset.error) == (False, None, "VLLM_BIO_API_BASE is not set")
    assert resources.healthy_groups() == {"t4-generalist"}


def test_a_server_that_drops_the_connection_is_unhealthy(machine: Machine, standins: StandInFleet) -> None:
    standins["h100-large"].set_fault(down=True)
    try:
        resources = machine.set("h100", healthy=["h100-large"]).detect()
    finally:
        standins["h100-large"].clear_fault()
    (probe,) = [e for e in resources.endpoints if e.group == "h100-large"]
    assert (probe.healthy, probe.error) == (False, "connection closed without a response")
    assert select_profile(machine.profiles, resources).profile == "development"


def test_a_silent_endpoint_times_out_as_a_fact(machine: Machine, silent_port: int) -> None:
    machine.set("none", env={"VLLM_GENERALIST_API_BASE": f"http://127.0.0.1:{silent_port}/v1"})
    resources = machine.detect(timeout_s=0.3)
    (probe,) = [e for e in resources.endpoints if e.group == "t4-generalist"]
    assert (probe.healthy, probe.error) == (False, "no answer within 0.3 s")


def test_cloud_keys_are_reported_as_set_or_unset_never_by_value(machine: Machine) -> None:
    resources = machine.set("none", keys=["DEEPSEEK_API_KEY"], env={"VLLM_API_KEY": SECRET}).detect()
    assert dict(resources.cloud_keys) == {"ANTHROPIC_API_KEY": False, "DEEPSEEK_API_KEY": True, "OPENAI_API_KEY": False}
    assert SECRET not in resources.model_dump_json()


def _alive_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="counts the hung tools in /proc")
def test_detection_finishes_in_time_when_every_tool_hangs_and_every_endpoint_is_silent(
    machine: Machine, silent_port: int
) -> None:
    silent = {name: f"http://127.0.0.1:{silent_port}/v1" for name in ALL_BASE_VARS}
    machine.set("t4x10", nvidia_smi="hang", slurm=FakeSlurm(mode="hang"), env={"SLURM_JOB_ID": "7", **silent})
    start = time.perf_counter()
    resources = machine.detect()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.5
    assert resources.duration_s < 2.0
    assert resources.gpu.error == "nvidia-smi did not answer within 1 s (killed)"
    assert (
        resources.slurm.error == "sinfo did not answer within 1 s (killed); squeue did not answer within 1 s (killed)"
    )
    assert {e.error for e in resources.endpoints} == {"no answer within 1 s"}
    assert _alive_with("time.sleep(29.5)") == []  # the hung tools were killed, not left behind


# -- how it is called ------------------------------------------------------------------------


async def test_adetect_runs_in_a_loop_and_detect_from_a_worker_thread(machine: Machine) -> None:
    machine.set("h100", healthy=["h100-large"])
    direct = await adetect(machine.settings, profiles=machine.profiles)
    threaded = await asyncio.to_thread(detect, machine.settings, profiles=machine.profiles)
    for resources in (direct, threaded):
        assert resources.gpu.models == ("H100",)
        assert resources.healthy_groups() == {"h100-large"}
    with pytest.raises(RuntimeError, match="await adetect"):
        detect(machine.settings, profiles=machine.profiles)


def test_an_explicit_model_list_needs_no_settings(machine: Machine, standins: StandInFleet) -> None:
    model_list = [
        {
            "model_name": "mine",
            "litellm_params": {"model": "openai/x", "api_base": standins["l4-coder"].api_base},
            "model_info": {"locality": "local"},
        },
        {"model_name": "cloud", "litellm_params": {"model": "openai/y", "api_key": "os.environ/MY_KEY"}},
    ]
    resources = detect(model_list=model_list)
    assert resources.healthy_groups() == {"mine"}
    assert dict(resources.cloud_keys) == {"MY_KEY": False}


def test_detect_cli_prints_a_table_and_the_selection(machine: Machine, capsys: pytest.CaptureFixture[str]) -> None:
    machine.set("t4x10", healthy=["t4-generalist"])
    assert main(["detect"]) == 0
    out = capsys.readouterr().out
    assert "10 × T4 (15 GB)" in out
    assert "VLLM_BIO_API_BASE is not set" in out
    assert "profile 't4_hybrid' selected automatically" in out


def test_detect_cli_shows_the_warnings_of_an_explicit_profile(
    machine: Machine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    machine.set("none")
    monkeypatch.setenv("BIOROUTER_PROFILE", "t4_hybrid")
    assert main(["detect"]) == 0
    out = capsys.readouterr().out
    assert "profile 't4_hybrid' chosen explicitly" in out
    warnings = [line for line in out.splitlines() if "warning:" in line]
    assert len(warnings) == 2
    assert "T4" in warnings[0]
    assert "nvidia-smi not found" in warnings[0]
    assert "VLLM_GENERALIST_API_BASE is not set" in warnings[1]


def test_detect_json_cli_as_a_subprocess_sees_the_fake_machine(machine: Machine) -> None:
    machine.set("h100", healthy=["h100-large"], slurm=FakeSlurm(), env={"SLURM_JOB_ID": "99"})
    result = subprocess.run(
        [sys.executable, "-m", "biorouter", "detect", "--json"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [g["model"] for g in payload["gpu"]["gpus"]] == ["H100"]
    assert payload["slurm"]["job_id"] == "99"
    assert payload["slurm"]["partition"] == "gpu"
    assert payload["healthy_groups"] == ["h100-large"]
    assert payload["selection"]["profile"] == "h100_local"
    assert payload["selection"]["explicit"] is False
    assert payload["duration_s"] < 2.0
