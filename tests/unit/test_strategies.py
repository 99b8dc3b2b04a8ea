"""Strategy plans in ``decide()``, the profile schema for strategies, and their reference checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from biorouter.costs.budget import BudgetKeeper
from biorouter.costs.ledger import BudgetScope, MemoryLedger
from biorouter.errors import ConfigError, RequestError
from biorouter.routing.decision import BudgetView, Signals
from biorouter.routing.plans import StrategyPolicy, StrategySpec
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Costs, Profile, Route, load_profile
from biorouter.routing.strategies import requested_strategy, with_strategy_signals
from biorouter.serving.validate import strategy_problems

from .test_policy import CATALOGUE, make_profile

ENSEMBLE = StrategySpec(kind="ensemble", n=2)
CASCADE = StrategySpec(kind="cascade")
RACE = StrategySpec(kind="race", n=2)


def profile(
    strategy: StrategySpec | None = None, *, requestable: tuple[StrategySpec, ...] = (), **route: Any
) -> Profile:
    chain = route.pop("fallbacks", ("t4-generalist", "deepseek-v3"))
    routes = {
        "code_generation": Route(group="t4-coder", fallbacks=chain, strategy=strategy or StrategySpec(), **route),
        "biomedical": Route(group="t4-bio", allow_cloud=False, fallbacks=("deepseek-v3", "t4-generalist")),
    }
    chosen = make_profile(routes)
    return chosen.model_copy(update={"strategies": StrategyPolicy(requestable=requestable)})


def signals(task: str = "code_generation", **kwargs: Any) -> Signals:
    return Signals(requested_model="auto", task=task, confidence=0.9, text_sha256="cd" * 32, **kwargs)


# -- plans ---------------------------------------------------------------------------------------------


def test_a_route_without_a_strategy_gets_no_plan_and_makes_one_call() -> None:
    decision = decide(signals(), profile(), CATALOGUE)
    assert decision.strategy is None
    assert "x-biorouter-strategy" not in decision.headers()


def test_ensemble_plan_takes_the_first_n_allowed_groups_in_route_order() -> None:
    decision = decide(signals(), profile(ENSEMBLE), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.kind == "ensemble"
    assert decision.strategy.groups == ("t4-coder", "t4-generalist")
    assert decision.strategy.vote == "normalised"
    assert decision.headers()["x-biorouter-strategy"] == "ensemble"


def test_cascade_plan_escalates_through_every_allowed_group() -> None:
    decision = decide(signals(), profile(CASCADE), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.groups == ("t4-coder", "t4-generalist", "deepseek-v3")
    assert decision.strategy.checks == ("empty", "refusal", "invalid_json")


def test_a_local_only_request_fans_out_to_local_groups_only() -> None:
    ensemble_of_three = StrategySpec(kind="ensemble", n=3)
    decision = decide(signals(sensitive_rules=("medical_record_number",)), profile(ensemble_of_three), CATALOGUE)
    assert decision.local_only
    assert decision.strategy is not None
    assert decision.strategy.groups == ("t4-coder", "t4-generalist")
    assert decision.strategy.notes == ("3 groups asked, 2 allowed",)


def test_a_local_only_request_with_one_local_group_falls_back_to_single() -> None:
    chain = ("deepseek-v3",)
    decision = decide(signals(sensitive_rules=("date_of_birth",)), profile(RACE, fallbacks=chain), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.kind == "single"
    assert decision.strategy.groups == ("t4-coder",)
    assert "only 't4-coder' is" in decision.strategy.notes[0]


def test_streaming_falls_back_to_single_with_a_note() -> None:
    decision = decide(signals(stream=True), profile(ENSEMBLE), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.kind == "single"
    assert decision.strategy.notes == ("streaming request: 'ensemble' falls back to single",)
    assert decision.headers()["x-biorouter-strategy-notes"] == "streaming request: 'ensemble' falls back to single"


def test_a_judge_the_request_may_not_use_is_replaced_by_a_normalised_vote() -> None:
    judged = StrategySpec(kind="ensemble", n=2, vote="judge", judge="deepseek-v3")
    decision = decide(signals(sensitive_rules=("date_of_birth",)), profile(judged), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.judge is None
    assert decision.strategy.vote == "normalised"
    assert "judge 'deepseek-v3' is not allowed" in decision.strategy.notes[0]


def test_the_judge_does_not_answer_and_its_estimate_counts() -> None:
    judged = StrategySpec(kind="ensemble", n=2, vote="judge", judge="deepseek-v3")
    estimates = {"t4-coder": 0.0, "t4-generalist": 0.0, "deepseek-v3": 0.004}
    decision = decide(signals(), profile(judged), CATALOGUE, BudgetView(estimates=estimates))
    assert decision.strategy is not None
    assert decision.strategy.groups == ("t4-coder", "t4-generalist")
    assert decision.strategy.judge == "deepseek-v3"
    assert decision.strategy.estimated_cost_usd == 0.004


def test_the_whole_fan_out_is_kept_under_the_per_request_limit() -> None:
    race_of_three = StrategySpec(kind="race", n=3)
    chosen = profile(race_of_three, fallbacks=("deepseek-v3", "gpt-4o"))
    chosen = chosen.model_copy(update={"costs": Costs(max_per_request_usd=0.01)})
    estimates = {"t4-coder": 0.0, "deepseek-v3": 0.006, "gpt-4o": 0.006}
    decision = decide(signals(), chosen, CATALOGUE, BudgetView(estimates=estimates))
    assert decision.strategy is not None
    assert decision.strategy.groups == ("t4-coder", "deepseek-v3")
    assert decision.strategy.estimated_cost_usd == 0.006
    assert "'gpt-4o' left out" in decision.strategy.notes[0]


def test_cloud_spend_off_leaves_only_local_groups_in_the_plan() -> None:
    view = BudgetView(estimates={"deepseek-v3": 0.002}, cloud_blocked="daily budget reached")
    decision = decide(signals(), profile(CASCADE), CATALOGUE, view)
    assert decision.strategy is not None
    assert decision.strategy.groups == ("t4-coder", "t4-generalist")


def test_a_request_may_ask_for_a_strategy_the_profile_allows() -> None:
    decision = decide(signals(strategy_request="race"), profile(requestable=(RACE,)), CATALOGUE)
    assert decision.strategy is not None
    assert (decision.strategy.kind, decision.strategy.source) == ("race", "request")
    assert decision.strategy.groups == ("t4-coder", "t4-generalist")


def test_a_request_may_always_ask_for_single() -> None:
    decision = decide(signals(strategy_request="single"), profile(ENSEMBLE), CATALOGUE)
    assert decision.strategy is not None
    assert decision.strategy.kind == "single"
    assert decision.strategy.notes == ("the request asked for 'single'",)


def test_a_strategy_the_profile_does_not_allow_is_a_request_error_naming_the_allowed_ones() -> None:
    with pytest.raises(RequestError, match=r"'race' is not allowed .* \(allowed: cascade, single; "):
        decide(signals(strategy_request="race"), profile(CASCADE), CATALOGUE)


def test_a_passthrough_request_is_never_fanned_out() -> None:
    named = Signals(requested_model="t4-coder", text_sha256="cd" * 32, strategy_request="race")
    assert decide(named, profile(requestable=(RACE,)), CATALOGUE).strategy is None


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [({}, None), ({"biorouter_strategy": "race"}, "race"), ({"biorouter_strategy": "single"}, "single")],
)
def test_the_requested_strategy_is_read_from_metadata(metadata: dict[str, Any], expected: str | None) -> None:
    assert requested_strategy({"metadata": metadata}) == expected


@pytest.mark.parametrize("value", ["fastest", 3, ""])
def test_a_malformed_strategy_request_is_a_request_error(value: Any) -> None:
    with pytest.raises(RequestError, match=r"metadata\.biorouter_strategy must be one of single, race"):
        requested_strategy({"metadata": {"biorouter_strategy": value}})


def test_signals_carry_the_stream_flag_and_the_asked_strategy() -> None:
    base = signals()
    assert with_strategy_signals(base, {}) is base
    updated = with_strategy_signals(base, {"stream": True, "metadata": {"biorouter_strategy": "cascade"}})
    assert (updated.stream, updated.strategy_request) == (True, "cascade")


# -- budgets -------------------------------------------------------------------------------------------


async def test_the_reservation_covers_the_whole_fan_out() -> None:
    keeper = BudgetKeeper(MemoryLedger(), [], CATALOGUE)
    scopes = [BudgetScope(key="profile:unit", period="day", limit_usd=1.0)]
    view = BudgetView(estimates={"t4-coder": 0.0, "deepseek-v3": 0.003, "gpt-4o": 0.005})
    chosen = profile(StrategySpec(kind="ensemble", n=3), fallbacks=("deepseek-v3", "gpt-4o"))
    fanned = decide(signals(), chosen, CATALOGUE, view)
    single = decide(signals(), profile(fallbacks=("deepseek-v3", "gpt-4o")), CATALOGUE, view)
    held = await keeper.reserve(fanned, view, scopes)
    held_single = await keeper.reserve(single, view, scopes)
    assert getattr(held, "estimate_usd", None) == pytest.approx(0.008)  # both cloud groups may be called
    assert getattr(held_single, "estimate_usd", None) == pytest.approx(0.005)  # one call: the dearest


# -- profile schema --------------------------------------------------------------------------------------


def write(tmp_path: Path, route_extra: str, top_extra: str = "") -> Path:
    path = tmp_path / "strat.yaml"
    path.write_text(
        "version: 1\nname: strat\ndescription: d\n"
        "default_route: {group: t4-generalist}\n"
        f"routes:\n  code_generation:\n    group: t4-coder\n    fallbacks: [t4-generalist]\n{route_extra}"
        f"{top_extra}"
    )
    return path


def test_a_route_strategy_loads_from_yaml(tmp_path: Path) -> None:
    loaded = load_profile(write(tmp_path, "    strategy: {kind: ensemble, n: 2, vote: json_fields}\n"))
    assert loaded.routes["code_generation"].strategy == StrategySpec(kind="ensemble", n=2, vote="json_fields")
    assert loaded.default_route.strategy.kind == "single"
    assert loaded.strategies.requestable == ()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    strategy: {kind: fastest}\n", "strategy -> kind: Input should be 'single', 'race'"),
        ("    strategy: {kind: race, n: 1}\n", "strategy -> n: Input should be greater than or equal to 2"),
        ("    strategy: {kind: ensemble, vote: judge}\n", "vote: judge needs a judge group"),
        ("    strategy: {kind: ensemble, judge: t4-coder}\n", "judge 't4-coder' is set but vote is 'normalised'"),
        ("    strategy: {kind: cascade, validators: [eval]}\n", "validators -> 0: Input should be 'json'"),
        ("    strategy: {kind: cascade, checks: [vibes]}\n", "checks -> 0: Input should be 'empty'"),
        ("    strategy: {kind: race, code: x}\n", "strategy -> code: unknown key"),
    ],
)
def test_bad_strategies_are_rejected_naming_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_profile(write(tmp_path, extra))


def test_requestable_strategies_list_each_kind_once(tmp_path: Path) -> None:
    top = "strategies:\n  requestable:\n    - {kind: race}\n    - {kind: race, n: 3}\n"
    with pytest.raises(ConfigError, match="requestable lists a strategy kind twice"):
        load_profile(write(tmp_path, "", top))


def test_strategy_spec_is_frozen() -> None:
    with pytest.raises(ValidationError):
        RACE.n = 3  # type: ignore[misc]


# -- reference checks (biorouter validate) ----------------------------------------------------------------


def problems(strategy: StrategySpec, fallbacks: tuple[str, ...] = ("t4-generalist",), **route: Any) -> list[str]:
    chosen = make_profile({"code_generation": Route(group="t4-coder", fallbacks=fallbacks, strategy=strategy, **route)})
    return [f"{' -> '.join(map(str, p.location))}: {p.message}" for p in strategy_problems("p.yaml", chosen, CATALOGUE)]


def test_a_valid_strategy_has_no_problems() -> None:
    assert problems(ENSEMBLE) == []


def test_n_above_the_routes_groups_is_an_error() -> None:
    assert problems(StrategySpec(kind="race", n=3)) == [
        "routes -> code_generation -> strategy -> n: n is 3 but the route offers 2 groups to answer "
        "(t4-coder, t4-generalist)"
    ]


def test_a_strategy_on_a_route_with_one_group_is_an_error() -> None:
    assert problems(CASCADE, fallbacks=()) == [
        "routes -> code_generation -> strategy -> kind: 'cascade' needs at least two groups to answer, the route "
        "offers 1 (t4-coder): add fallbacks or use single"
    ]


def test_a_judge_outside_the_route_is_an_error() -> None:
    judged = StrategySpec(kind="ensemble", vote="judge", judge="gpt-4o")
    assert problems(judged) == [
        "routes -> code_generation -> strategy -> judge: judge 'gpt-4o' is not one of the groups this route may "
        "use (t4-coder, t4-generalist): add it to the route's fallbacks"
    ]


def test_cloud_groups_do_not_count_on_a_local_only_route() -> None:
    found = problems(StrategySpec(kind="race"), fallbacks=("deepseek-v3",), allow_cloud=False)
    assert found == [
        "routes -> code_generation -> strategy -> kind: 'race' needs at least two groups to answer, the route "
        "offers 1 (t4-coder): add fallbacks or use single"
    ]


def test_the_shipped_development_profile_shows_an_ensemble_and_a_cascade() -> None:
    from ..conftest import ROOT

    shipped = load_profile(ROOT / "profiles" / "development.yaml")
    assert shipped.routes["code_validation"].strategy.kind == "ensemble"
    assert shipped.routes["data_analysis"].strategy.kind == "cascade"
    assert {spec.kind for spec in shipped.strategies.requestable} == {"race", "ensemble", "cascade"}


# -- the proxy's pseudo group ------------------------------------------------------------------------------


def test_the_strategy_pseudo_group_is_no_group_of_the_catalogue_but_survives_the_standin_overlay() -> None:
    import yaml

    from biorouter.routing.catalogue import Catalogue, load_litellm_config, parse_model_list
    from biorouter.testing.devstack import standin_config

    from ..conftest import ROOT

    path = ROOT / "litellm_config" / "config.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "biorouter-strategy" in {entry["model_name"] for entry in raw["model_list"]}
    assert "biorouter-strategy" not in Catalogue.from_deployments(load_litellm_config(path).model_list).groups
    assert "biorouter-strategy" not in {d.model_name for d in parse_model_list(raw["model_list"])}
    overlay = standin_config(raw, {"t4-coder": "http://127.0.0.1:1/v1"})
    assert [entry["model_name"] for entry in overlay["model_list"]] == ["t4-coder", "biorouter-strategy"]
    assert overlay["litellm_settings"]["custom_provider_map"][0]["provider"] == "biorouter"
