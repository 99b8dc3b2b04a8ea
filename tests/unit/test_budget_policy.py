"""Budget rules in ``decide()``: estimates per group and cloud spend switched off, on hand-built inputs."""

from __future__ import annotations

from typing import Any

import pytest

from biorouter.errors import RoutingError
from biorouter.routing.decision import BudgetView, Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Costs, Profile, Route
from biorouter.serving.adapter import litellm_arguments

from .test_policy import CATALOGUE, make_profile

ROUTES = {
    "code_generation": Route(group="deepseek-v3", fallbacks=("gpt-4o", "t4-coder")),
    "documentation": Route(group="gpt-4o", fallbacks=("deepseek-v3",)),
    "orchestration": Route(group="gpt-4o"),
}


def profile(**costs: Any) -> Profile:
    return make_profile(dict(ROUTES)).model_copy(update={"costs": Costs(**costs)})


def signals(task: str = "code_generation", model: str = "auto") -> Signals:
    return Signals(requested_model=model, task=task, confidence=0.9, text_sha256="ef" * 32)


ESTIMATES = {"deepseek-v3": 0.002, "gpt-4o": 0.03, "t4-coder": 0.0, "t4-generalist": 0.0}


def test_no_budget_view_means_no_budget_rule() -> None:
    decision = decide(signals(), profile(max_per_request_usd=0.001), CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("deepseek-v3", ("gpt-4o", "t4-coder"))
    assert decision.estimated_cost_usd is None


def test_groups_over_the_per_request_limit_are_skipped_and_the_estimate_is_recorded() -> None:
    decision = decide(signals(), profile(max_per_request_usd=0.01), CATALOGUE, BudgetView(estimates=ESTIMATES))
    assert (decision.group, decision.fallbacks) == ("deepseek-v3", ("t4-coder",))
    assert "group 'gpt-4o' estimate $0.0300 over max_per_request_usd $0.01: skipped" in decision.reasons
    assert decision.estimated_cost_usd == 0.002


def test_first_choice_over_the_limit_gives_way_to_the_cheapest_group_under_it() -> None:
    decision = decide(
        signals("documentation"), profile(max_per_request_usd=0.01), CATALOGUE, BudgetView(estimates=ESTIMATES)
    )
    assert decision.group == "deepseek-v3"
    assert "cheapest group under the per-request limit: 'deepseek-v3'" in decision.reasons


def test_cheapest_first_when_several_groups_remain_under_the_limit() -> None:
    route = {"documentation": Route(group="gpt-4o", fallbacks=("deepseek-v3", "t4-generalist"))}
    chosen = make_profile(route).model_copy(update={"costs": Costs(max_per_request_usd=0.01)})
    decision = decide(signals("documentation"), chosen, CATALOGUE, BudgetView(estimates=ESTIMATES))
    assert (decision.group, decision.fallbacks) == ("t4-generalist", ("deepseek-v3",))  # $0 before $0.002


def test_nothing_under_the_limit_is_refused_naming_the_limit_and_the_estimate() -> None:
    with pytest.raises(RoutingError, match=r"group 'gpt-4o' estimate \$0\.0300 over max_per_request_usd \$0\.01"):
        decide(signals("orchestration"), profile(max_per_request_usd=0.01), CATALOGUE, BudgetView(estimates=ESTIMATES))


def test_spent_budget_downgrades_cloud_bound_requests_to_local_groups() -> None:
    view = BudgetView(estimates=ESTIMATES, cloud_blocked="daily budget of profile:unit ($1.00) reached: $1.0100 spent")
    decision = decide(signals(), profile(daily_budget_usd=1.0), CATALOGUE, view)
    assert (decision.group, decision.fallbacks) == ("t4-coder", ())
    assert (
        "group 'deepseek-v3' is cloud: skipped, daily budget of profile:unit ($1.00) reached: $1.0100 spent"
        in decision.reasons
    )


def test_spent_budget_never_blocks_local_groups_and_refuses_a_cloud_only_route_clearly() -> None:
    view = BudgetView(estimates=ESTIMATES, cloud_blocked="monthly budget of profile:unit ($10.00) reached")
    with pytest.raises(RoutingError, match=r"monthly budget of profile:unit \(\$10\.00\) reached"):
        decide(signals("orchestration"), profile(monthly_budget_usd=10.0), CATALOGUE, view)


def test_naming_a_cloud_group_while_cloud_spend_is_off_is_refused() -> None:
    view = BudgetView(estimates=ESTIMATES, cloud_blocked="daily budget of profile:unit ($1.00) reached")
    with pytest.raises(RoutingError, match=r"'gpt-4o' refused: cloud spend is off: daily budget"):
        decide(signals(model="gpt-4o"), profile(daily_budget_usd=1.0), CATALOGUE, view)
    local = decide(signals(model="t4-coder"), profile(daily_budget_usd=1.0), CATALOGUE, view)
    assert local.group == "t4-coder"


def test_budget_warnings_reach_the_response_headers() -> None:
    view = BudgetView(estimates=ESTIMATES, warnings=("daily budget of profile:unit ($1.00): 85% used",))
    decision = decide(signals(), profile(daily_budget_usd=1.0), CATALOGUE, view)
    assert decision.headers()["x-biorouter-budget"] == "daily budget of profile:unit ($1.00): 85% used"
    assert "x-biorouter-budget" not in decide(signals(), profile(), CATALOGUE, BudgetView()).headers()
    assert litellm_arguments(decision, {"model": "auto"}, profile())["metadata"]["biorouter"]["budget_warnings"] == [
        "daily budget of profile:unit ($1.00): 85% used"
    ]


# -- the warning past warn_at is logged once per budget and period (issue 20) -------------------------


async def test_the_budget_warning_is_logged_once_when_spend_crosses_warn_at(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    from datetime import UTC, datetime

    from biorouter.costs.budget import BudgetKeeper
    from biorouter.costs.ledger import MemoryLedger, SpendRecord

    ledger = MemoryLedger()
    keeper = BudgetKeeper(ledger, [], CATALOGUE)
    budgeted = profile(daily_budget_usd=1.0, warn_at=0.5)
    [scope] = keeper.scopes(budgeted, "code_generation")

    async def spend(usd: float) -> BudgetView:
        record = SpendRecord(time=datetime.now(UTC), cost_usd=usd, profile=budgeted.name, task=None, group="gpt-4o")
        await ledger.settle(None, record, [scope])
        view, _ = await keeper.view(budgeted, signals(), [{"role": "user", "content": "hi"}], {})
        return view

    with caplog.at_level(logging.INFO, logger="biorouter"):
        assert (await spend(0.2)).warnings == ()
        assert not [r for r in caplog.records if "budget" in r.getMessage()]
        for usd in (0.3, 0.1, 0.1):  # past warn_at: every response carries the warning, the log says it once
            assert (await spend(usd)).warnings
    logged = [r for r in caplog.records if "biorouter budget:" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.WARNING
    assert "daily budget of profile:unit ($1.00): 50% used" in logged[0].getMessage()
    assert "warn_at 50%" in logged[0].getMessage()


def test_the_decision_log_line_carries_the_budget_warnings() -> None:
    view = BudgetView(estimates=ESTIMATES, warnings=("daily budget of profile:test ($1.00): 85% used",))
    decision = decide(signals(), profile(daily_budget_usd=1.0), CATALOGUE, budget=view)
    assert '"budget_warnings": ["daily budget of profile:test ($1.00): 85% used"]' in decision.log_line()
    quiet = decide(signals(), profile(daily_budget_usd=1.0), CATALOGUE, budget=BudgetView(estimates=ESTIMATES))
    assert "budget_warnings" not in quiet.log_line()
