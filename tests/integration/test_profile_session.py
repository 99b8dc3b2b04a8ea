"""A ``BioRouter`` session: the profile chosen once at start (by hardware or explicitly), switched only on purpose."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from biorouter.errors import ConfigError
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings
from biorouter.testing.hardware import fake_path, write_fake_tools

from ..conftest import ROOT

CODE = [{"role": "user", "content": "write a python function that reverses the order of words in a sentence"}]


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make this process look like a machine with the given GPUs (fake nvidia-smi first on PATH)."""

    def become(scenario: str) -> None:
        tools = tmp_path / f"tools-{scenario}"
        write_fake_tools(tools, scenario)
        monkeypatch.setenv("PATH", fake_path(tools))

    return become


def test_auto_on_a_machine_without_gpus_or_keys_selects_development(
    machine: Any, dev_stack: Any, classifier: Any
) -> None:
    machine("none")
    engine = BioRouter.from_settings(load_settings(ROOT), litellm_config=dev_stack.config_path, classifier=classifier)
    assert engine.profile.name == "development"
    assert engine.selection is not None
    assert engine.selection.explicit is False
    assert engine.session.summary().selected.startswith("profile 'development' selected automatically")


async def test_auto_on_t4_gpus_with_a_healthy_generalist_selects_t4_hybrid_and_routes_with_it(
    machine: Any, dev_stack: Any, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine("t4x10")
    monkeypatch.setenv("VLLM_GENERALIST_API_BASE", dev_stack.fleet["t4-generalist"].api_base)
    engine = BioRouter.from_settings(load_settings(ROOT), classifier=classifier)  # the shipped litellm_config
    assert engine.profile.name == "t4_hybrid"
    decision = await engine.aroute(CODE)
    assert (decision.profile, decision.group) == ("t4_hybrid", "t4-coder")


def test_explicit_profile_wins_and_warns_about_each_unmet_need(
    machine: Any, dev_stack: Any, classifier: Any, caplog: pytest.LogCaptureFixture
) -> None:
    machine("none")
    with caplog.at_level(logging.WARNING, logger="biorouter"):
        engine = BioRouter.from_settings(
            load_settings(ROOT), profile="h100_local", litellm_config=dev_stack.config_path, classifier=classifier
        )
    assert engine.profile.name == "h100_local"
    warnings = engine.session.summary().warnings
    assert any("needs 1 H100 GPU with 79 GB+; found no GPU" in w for w in warnings)
    assert any("needs h100-large healthy" in w for w in warnings)
    assert "profile 'h100_local' was chosen explicitly but needs 1 H100 GPU" in caplog.text


async def test_switching_is_explicit_logged_and_changes_the_next_decision(
    classifier: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # the platform's deployment list (a switch is checked against it; the demo's stand-ins lack cloud_only's groups)
    engine = BioRouter.from_settings(
        load_settings(ROOT),
        profile="development",
        litellm_config=ROOT / "litellm_config" / "config.yaml",
        classifier=classifier,
    )
    assert (await engine.aroute(CODE)).profile == "development"
    with caplog.at_level(logging.WARNING, logger="biorouter"):
        engine.switch_profile("cloud_only", reason="GPU nodes drained for maintenance", by="test")
    decision = await engine.aroute(CODE)
    assert (decision.profile, decision.group) == ("cloud_only", "claude-sonnet")
    assert "switched from 'development' to 'cloud_only' by test: GPU nodes drained for maintenance" in caplog.text
    [switch] = engine.session.summary().switches
    assert (switch.previous, switch.profile) == ("development", "cloud_only")


def test_switching_to_an_unknown_profile_changes_nothing(dev_stack: Any, classifier: Any) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )
    with pytest.raises(ConfigError, match="unknown profile 'gpu_cluster'"):
        engine.switch_profile("gpu_cluster", reason="typo")
    assert engine.profile.name == "development"
    assert engine.session.summary().switches == ()


async def test_session_counts_served_and_failed_requests(dev_stack: Any, classifier: Any, clean_standins: Any) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )
    await engine.acompletion(CODE)
    for group in ("t4-coder", "t4-generalist", "deepseek-v3"):
        clean_standins[group].set_fault(error_rate=1.0, status=500)
    with pytest.raises(Exception, match="injected error"):
        await engine.acompletion(CODE, num_retries=0)
    summary = engine.session.summary()
    assert (summary.totals.requests, summary.totals.errors) == (2, 1)
    assert summary.by_group["t4-coder"].requests == 2
    assert summary.by_task["code_generation"].errors == 1
