"""The demo's deployment list (``standin_config``): the platform's groups on stand-ins, priced as in production."""

from __future__ import annotations

from pathlib import Path

import yaml

from biorouter.costs.prices import group_prices
from biorouter.routing.catalogue import parse_model_list
from biorouter.testing.devstack import standin_config

from ..conftest import ROOT

BASE = yaml.safe_load((ROOT / "litellm_config" / "config.yaml").read_text())
GROUPS = ("deepseek-v3", "claude-sonnet", "t4-coder", "openai-embeddings")


def overlay() -> dict:  # type: ignore[type-arg]
    return standin_config(BASE, {g: f"http://127.0.0.1:9/{g}/v1" for g in GROUPS})


def test_cloud_stand_ins_cost_what_the_real_groups_cost_so_budgets_can_be_seen_in_the_demo() -> None:
    """Issue 20: every stand-in cost $0, so ``make run`` could never show a budget warning or spend."""
    real = group_prices(parse_model_list(BASE["model_list"]))
    demo = group_prices(parse_model_list(overlay()["model_list"]))
    for group in ("deepseek-v3", "claude-sonnet", "openai-embeddings"):  # priced from LiteLLM's map or model_info
        assert demo[group] == real[group]
        assert demo[group] is not None
        assert not demo[group].free
    assert demo["t4-coder"] is not None
    assert demo["t4-coder"].free


def test_only_the_transport_changes(tmp_path: Path) -> None:
    entries = {e["model_name"]: e for e in overlay()["model_list"]}
    assert set(entries) >= set(GROUPS)
    assert entries["deepseek-v3"]["litellm_params"]["model"] == "openai/deepseek-v3"
    assert entries["deepseek-v3"]["model_info"]["locality"] == "cloud"
    assert entries["t4-coder"]["model_info"]["locality"] == "local"
