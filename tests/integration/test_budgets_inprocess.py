"""Budgets through ``BioRouter.acompletion()``: real LiteLLM cost figures, the in-process ledger, concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from biorouter.routing.profiles import Costs
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT

CLOUD = "deepseek-v3"
PRICES = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002}
TEXT = [{"role": "user", "content": "coordinate the agents for the nightly pipeline run"}]


@pytest.fixture
def engine(dev_stack: Any, classifier: Any, tmp_path: Path) -> BioRouter:
    config = yaml.safe_load(Path(dev_stack.config_path).read_text())
    for deployment in config["model_list"]:
        if deployment["model_name"] == CLOUD:
            deployment["model_info"].update(PRICES)
    path = tmp_path / "priced.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=path, classifier=classifier
    )
    costs = Costs(daily_budget_usd=0.003, max_per_request_usd=0.01)
    engine.profile = engine.profile.model_copy(update={"costs": costs})
    return engine


async def spent_today(engine: BioRouter) -> tuple[float, int]:
    rows = await engine.ledger.report(datetime.now(UTC).date())
    total = [row for row in rows if row.dimension == "total"]
    return sum(r.cost_usd for r in total), sum(r.requests for r in total)


async def test_litellms_cost_of_a_cloud_answer_is_recorded_per_task_and_group(
    engine: BioRouter, clean_standins: Any
) -> None:
    response = await engine.acompletion(TEXT, max_tokens=100, metadata={"biorouter_task": "orchestration"})
    decision = response._hidden_params["biorouter"]
    assert decision.group == CLOUD
    assert decision.estimated_cost_usd == pytest.approx(0.00001 * 14 + 0.00002 * 100, rel=0.5)
    cost = response._hidden_params["response_cost"]
    assert cost > 0
    rows = await engine.ledger.report(datetime.now(UTC).date())
    by = {(r.dimension, r.key): r for r in rows}
    assert by[("group", CLOUD)].cost_usd == pytest.approx(cost)
    assert by[("task", "orchestration")].requests == 1
    assert by[("profile", "development")].cost_usd == pytest.approx(cost)
    assert engine.session.summary().totals.cost_usd == pytest.approx(cost)


async def test_local_answers_cost_nothing_but_their_gpu_seconds_are_counted(
    engine: BioRouter, clean_standins: Any
) -> None:
    clean_standins["t4-coder"].set_fault(latency_ms=200)
    await engine.acompletion(TEXT, metadata={"biorouter_task": "code_generation"})
    rows = await engine.ledger.report(datetime.now(UTC).date())
    group = next(r for r in rows if r.dimension == "group" and r.key == "t4-coder")
    assert group.cost_usd == 0
    assert group.gpu_seconds >= 0.2


async def test_fifty_concurrent_requests_near_the_limit_overspend_by_at_most_one_estimate(
    engine: BioRouter, clean_standins: Any
) -> None:
    async def one() -> Any:
        return await engine.acompletion(TEXT, max_tokens=100, metadata={"biorouter_task": "orchestration"})

    responses = await asyncio.gather(*(one() for _ in range(50)))
    groups = [r._hidden_params["biorouter"].group for r in responses]
    estimate = max(r._hidden_params["biorouter"].estimated_cost_usd or 0 for r in responses)
    cost, requests = await spent_today(engine)
    assert requests == 50
    assert cost <= 0.003 + estimate
    assert groups.count(CLOUD) == clean_standins[CLOUD].stats()["chat_requests"]
    assert 0 < groups.count(CLOUD) < 50  # the budget let some through, then the rest were downgraded
    assert set(groups) == {CLOUD, "t4-generalist"}
