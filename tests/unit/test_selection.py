"""Profile selection: which profile fits a machine, and why; hand-built snapshots stand in for hardware."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from biorouter.errors import ConfigError, SelectionError
from biorouter.hardware.resources import GPU, EndpointHealth, GPUInfo, HostInfo, Resources, SlurmInfo
from biorouter.hardware.selection import AUTO_PROFILE, matches, select_profile
from biorouter.routing.profiles import HardwareNeeds, Profile, Route, load_profiles

from ..conftest import ROOT


@pytest.fixture(scope="module")
def shipped() -> dict[str, Profile]:
    return load_profiles(ROOT / "profiles")


def machine(
    gpus: tuple[tuple[str, str, float], ...] = (),
    *,
    gpu_error: str | None = None,
    slurm: SlurmInfo | None = None,
    keys: tuple[str, ...] = (),
    healthy: tuple[str, ...] = (),
    endpoints: tuple[EndpointHealth, ...] = (),
) -> Resources:
    """A snapshot: ``gpus`` as (nvidia-smi name, model, GiB); ``healthy`` groups answered their probe."""
    return Resources(
        detected_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.1,
        host=HostInfo(hostname="test"),
        gpu=GPUInfo(
            gpus=tuple(GPU(index=i, name=name, model=model, memory_gb=gb) for i, (name, model, gb) in enumerate(gpus)),
            error=gpu_error,
        ),
        slurm=slurm or SlurmInfo(),
        cloud_keys={name: True for name in keys},
        endpoints=(
            *(EndpointHealth(group=g, deployment=f"{g}-1", healthy=True, status=200) for g in healthy),
            *endpoints,
        ),
    )


def profile(name: str, priority: int = 0, **needs: object) -> Profile:
    return Profile(
        version=1,
        name=name,
        description=f"{name} for tests",
        priority=priority,
        hardware=HardwareNeeds.model_validate(needs),
        default_route=Route(group="g"),
        routes={"t": Route(group="g")},
    )


T4 = ("Tesla T4", "T4", 15.0)
L4 = ("NVIDIA L4", "L4", 22.5)
H100 = ("NVIDIA H100 80GB HBM3", "H100", 79.6)
A10 = ("NVIDIA A10", "A10", 22.0)


# --- matches(): each kind of need ---------------------------------------------------------------


def test_a_profile_without_needs_fits_anything_and_names_nothing() -> None:
    fit = matches(profile("bare"), machine())
    assert fit.ok
    assert fit.reasons == ()
    assert fit.met == ()


def test_gpu_type_need_is_met_by_a_gpu_of_that_type() -> None:
    fit = matches(profile("p", gpu_types=["T4"]), machine((T4,)))
    assert fit.ok
    assert fit.met == ("1 T4 GPU: found 1",)


def test_gpu_type_need_names_the_gpus_found_when_unmet() -> None:
    fit = matches(profile("p", gpu_types=["H100"]), machine((A10, T4)))
    assert not fit.ok
    assert fit.reasons == ("needs 1 H100 GPU; found 1× A10 22 GB, 1× T4 15 GB",)


def test_gpu_types_compare_case_insensitively() -> None:
    assert matches(profile("p", gpu_types=["t4"]), machine((T4,))).ok


def test_gpu_count_need_counts_only_gpus_of_the_wanted_types() -> None:
    needs = {"gpu_types": ["L4", "T4"], "min_gpus": 2}
    assert not matches(profile("p", **needs), machine((L4, A10))).ok
    assert matches(profile("p", **needs), machine((L4, A10, T4))).ok
    fit = matches(profile("p", min_gpus=3), machine((T4, T4)))
    assert fit.reasons == ("needs 3 any GPUs; found 2× T4 15 GB",)


def test_gpu_memory_need_is_per_gpu_and_excludes_smaller_ones() -> None:
    needs = {"min_gpus": 2, "min_gpu_memory_gb": 20}
    fit = matches(profile("p", **needs), machine((T4, L4)))
    assert not fit.ok
    assert fit.reasons == ("needs 2 any GPUs with 20 GB+; found 1× T4 15 GB, 1× L4 22.5 GB",)
    assert matches(profile("p", **needs), machine((L4, A10))).ok


def test_a_memory_need_alone_asks_for_one_gpu() -> None:
    assert matches(profile("p", min_gpu_memory_gb=40), machine((H100,))).ok
    assert not matches(profile("p", min_gpu_memory_gb=40), machine((L4,))).ok


def test_no_gpu_reason_says_why_detection_found_none() -> None:
    fit = matches(profile("p", gpu_types=["T4"]), machine(gpu_error="nvidia-smi not found"))
    assert fit.reasons == ("needs 1 T4 GPU; found no GPU (nvidia-smi not found)",)
    assert matches(profile("p", gpu_types=["T4"]), machine()).reasons == ("needs 1 T4 GPU; found no GPU",)


def test_slurm_required_is_met_inside_a_job_or_with_sinfo() -> None:
    needs = {"slurm": "required"}
    assert matches(profile("p", **needs), machine(slurm=SlurmInfo(in_job=True, job_id="42"))).ok
    assert matches(profile("p", **needs), machine(slurm=SlurmInfo(available=True))).met == ("SLURM",)
    fit = matches(profile("p", **needs), machine(slurm=SlurmInfo(error="sinfo not found")))
    assert fit.reasons == ("needs SLURM; sinfo not found",)
    assert matches(profile("p", **needs), machine()).reasons == (
        "needs SLURM; not in a SLURM job and sinfo unavailable",
    )


def test_slurm_forbidden_refuses_only_inside_a_job() -> None:
    needs = {"slurm": "forbidden"}
    assert matches(profile("p", **needs), machine(slurm=SlurmInfo(available=True))).ok
    fit = matches(profile("p", **needs), machine(slurm=SlurmInfo(available=True, in_job=True, job_id="7")))
    assert fit.reasons == ("must not run inside a SLURM job (in job 7)",)


def test_slurm_optional_ignores_slurm() -> None:
    assert matches(profile("p"), machine(slurm=SlurmInfo(in_job=True, job_id="7"))).ok


def test_cloud_api_needs_each_key_set_and_never_show_values() -> None:
    needs = {"cloud_apis": ["DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY"]}
    fit = matches(profile("p", **needs), machine(keys=("DEEPSEEK_API_KEY",)))
    assert fit.met == ("DEEPSEEK_API_KEY set",)
    assert fit.reasons == ("needs ANTHROPIC_API_KEY set",)
    unset = Resources.model_validate({**machine().model_dump(), "cloud_keys": {"ANTHROPIC_API_KEY": False}})
    assert matches(profile("p", cloud_apis=["ANTHROPIC_API_KEY"]), unset).reasons == ("needs ANTHROPIC_API_KEY set",)


def test_healthy_group_need_carries_the_probe_error() -> None:
    refused = EndpointHealth(group="t4-bio", deployment="bio-1", error="connection refused")
    failing = EndpointHealth(group="t4-bio", deployment="bio-2", status=503)
    fit = matches(profile("p", healthy_groups=["t4-bio"]), machine(endpoints=(refused, failing)))
    assert fit.reasons == ("needs t4-bio healthy (connection refused; HTTP 503)",)


def test_one_healthy_deployment_makes_its_group_healthy() -> None:
    refused = EndpointHealth(group="t4-bio", deployment="bio-2", error="connection refused")
    fit = matches(profile("p", healthy_groups=["t4-bio"]), machine(healthy=("t4-bio",), endpoints=(refused,)))
    assert fit.ok
    assert fit.met == ("t4-bio healthy",)


def test_a_group_never_probed_is_named_as_not_local() -> None:
    fit = matches(profile("p", healthy_groups=["deepseek-v3"]), machine())
    assert fit.reasons == ("needs deepseek-v3 healthy (not a local group in litellm_config)",)


def test_every_unmet_need_is_a_reason_and_every_met_one_is_listed() -> None:
    needs = {"gpu_types": ["T4"], "slurm": "required", "cloud_apis": ["DEEPSEEK_API_KEY"], "healthy_groups": ["g"]}
    fit = matches(profile("p", priority=7, **needs), machine((T4,), keys=("DEEPSEEK_API_KEY",)))
    assert (fit.profile, fit.priority, fit.ok) == ("p", 7, False)
    assert len(fit.reasons) == 2
    assert fit.reasons[0].startswith("needs SLURM")
    assert fit.reasons[1].startswith("needs g healthy")
    assert fit.met == ("1 T4 GPU: found 1", "DEEPSEEK_API_KEY set")


# --- select_profile(): the rule ------------------------------------------------------------------


def test_the_highest_priority_profile_that_fits_is_selected() -> None:
    profiles = {p.name: p for p in (profile("low", 1), profile("high", 9, gpu_types=["T4"]), profile("mid", 5))}
    chosen = select_profile(profiles, machine())
    assert chosen.profile == "mid"
    assert not chosen.explicit
    assert chosen.warnings == ()
    assert [f.profile for f in chosen.fits] == ["high", "mid", "low"]
    assert select_profile(profiles, machine((T4,))).profile == "high"


def test_equal_priorities_are_broken_by_name_so_the_choice_is_stable() -> None:
    profiles = {p.name: p for p in (profile("zeta", 5), profile("alpha", 5), profile("mid", 5))}
    assert select_profile(profiles, machine()).profile == "alpha"


@pytest.mark.parametrize("auto", [None, AUTO_PROFILE])
def test_no_explicit_choice_and_auto_both_select_automatically(auto: str | None) -> None:
    profiles = {p.name: p for p in (profile("a", 1), profile("b", 2))}
    assert select_profile(profiles, machine(), explicit=auto).profile == "b"


def test_an_explicit_choice_wins_with_a_warning_per_unmet_need() -> None:
    profiles = {p.name: p for p in (profile("fits", 1), profile("gpu", 0, gpu_types=["H100"], cloud_apis=["K"]))}
    chosen = select_profile(profiles, machine(), explicit="gpu")
    assert chosen.profile == "gpu"
    assert chosen.explicit
    assert chosen.warnings == (
        "profile 'gpu' was chosen explicitly but needs 1 H100 GPU; found no GPU",
        "profile 'gpu' was chosen explicitly but needs K set",
    )
    assert "chosen explicitly" in chosen.describe()


def test_an_explicit_choice_that_fits_has_no_warnings() -> None:
    profiles = {p.name: p for p in (profile("a", 1), profile("b", 2))}
    chosen = select_profile(profiles, machine(), explicit="a")
    assert (chosen.profile, chosen.explicit, chosen.warnings) == ("a", True, ())


def test_an_unknown_explicit_profile_is_a_config_error_listing_the_available_ones() -> None:
    profiles = {p.name: p for p in (profile("a"), profile("b"))}
    with pytest.raises(ConfigError) as excinfo:
        select_profile(profiles, machine(), explicit="nope")
    assert [str(p) for p in excinfo.value.problems] == ["profile: unknown profile 'nope' (available: a, b)"]


def test_when_nothing_fits_the_error_lists_every_profile_and_why() -> None:
    profiles = {
        p.name: p for p in (profile("gpu", 9, gpu_types=["T4"]), profile("cloud", 3, cloud_apis=["DEEPSEEK_API_KEY"]))
    }
    with pytest.raises(SelectionError) as excinfo:
        select_profile(profiles, machine(gpu_error="nvidia-smi not found"))
    text = str(excinfo.value)
    assert text.startswith("no profile fits this machine; choose one with BIOROUTER_PROFILE or --profile")
    assert "  gpu (priority 9): needs 1 T4 GPU; found no GPU (nvidia-smi not found)" in text
    assert "  cloud (priority 3): needs DEEPSEEK_API_KEY set" in text
    assert text.index("gpu (priority 9)") < text.index("cloud (priority 3)")


# --- the shipped profiles: the decision tree ----------------------------------------------------


def test_an_h100_with_its_group_healthy_selects_h100_local(shipped: dict[str, Profile]) -> None:
    resources = machine((H100,), healthy=("h100-large",), keys=("DEEPSEEK_API_KEY",))
    assert select_profile(shipped, resources).profile == "h100_local"


def test_l4_and_t4_gpus_with_coder_and_generalist_healthy_select_l4_t4_combined(shipped: dict[str, Profile]) -> None:
    resources = machine((L4, L4, T4, T4), healthy=("l4-coder", "t4-generalist"), keys=("DEEPSEEK_API_KEY",))
    assert select_profile(shipped, resources).profile == "l4_t4_combined"


def test_ten_t4_gpus_with_the_generalist_healthy_select_t4_hybrid(shipped: dict[str, Profile]) -> None:
    resources = machine((T4,) * 10, healthy=("t4-generalist", "t4-coder"), keys=("DEEPSEEK_API_KEY",))
    chosen = select_profile(shipped, resources)
    assert chosen.profile == "t4_hybrid"
    l4_t4 = next(f for f in chosen.fits if f.profile == "l4_t4_combined")
    assert l4_t4.reasons == ("needs l4-coder healthy (not a local group in litellm_config)",)


def test_a_machine_with_only_a_deepseek_key_selects_cloud_only(shipped: dict[str, Profile]) -> None:
    assert select_profile(shipped, machine(keys=("DEEPSEEK_API_KEY",))).profile == "cloud_only"


def test_a_machine_with_nothing_selects_development(shipped: dict[str, Profile]) -> None:
    chosen = select_profile(shipped, machine(gpu_error="nvidia-smi not found"))
    assert chosen.profile == "development"
    assert [f.profile for f in chosen.fits] == [
        "h100_local",
        "l4_t4_combined",
        "t4_hybrid",
        "cloud_only",
        "development",
    ]
    assert [f.profile for f in chosen.fits if f.ok] == ["development"]


def test_gpus_whose_local_groups_are_down_fall_through_to_the_next_profile(shipped: dict[str, Profile]) -> None:
    down = EndpointHealth(group="h100-large", deployment="h100-large-1", error="connection refused")
    chosen = select_profile(shipped, machine((H100,), endpoints=(down,), keys=("DEEPSEEK_API_KEY",)))
    assert chosen.profile == "cloud_only"
    h100 = next(f for f in chosen.fits if f.profile == "h100_local")
    assert h100.reasons == ("needs h100-large healthy (connection refused)",)
    assert h100.met == ("1 H100 GPU with 79 GB+: found 1",)


def test_an_explicit_shipped_profile_on_a_bare_machine_warns_about_each_need(shipped: dict[str, Profile]) -> None:
    unset = EndpointHealth(group="t4-generalist", deployment="qwen-7b", error="VLLM_GENERALIST_API_BASE is not set")
    resources = machine(gpu_error="nvidia-smi not found", endpoints=(unset,))
    chosen = select_profile(shipped, resources, explicit="t4_hybrid")
    assert chosen.profile == "t4_hybrid"
    assert chosen.warnings == (
        "profile 't4_hybrid' was chosen explicitly but needs 1 T4 GPU with 15 GB+; found no GPU (nvidia-smi not found)",
        "profile 't4_hybrid' was chosen explicitly but needs t4-generalist healthy "
        "(VLLM_GENERALIST_API_BASE is not set)",
    )
