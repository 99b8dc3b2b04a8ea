"""Two-stage routing: the complexity estimate, tier routes in ``decide()``, and their validation."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from biorouter.routing.complexity import (
    ComplexityConfig,
    ComplexityEstimate,
    TierExamples,
    Weights,
    estimate_complexity,
    read_tier_examples,
)
from biorouter.routing.decision import Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Route, TierRoute
from biorouter.serving.validate import check_profile

from .test_policy import CATALOGUE, make_profile

NO_EXAMPLES = ComplexityConfig(examples=None)

ONE_LINER = "write a one-liner that counts lines in a file"
PIPELINE = (
    "Design an end-to-end variant calling pipeline for 5,000 genomes on our SLURM cluster. Requirements:\n"
    "1. align with bwa-mem2 and mark duplicates\n2. recalibrate base qualities\n3. joint genotyping\n"
    "4. annotate with VEP\n5. checkpoint every stage so a failed node does not restart the run\n"
    "Optimise for cost and explain the trade-offs between the scheduling options."
)


# --- the estimate -----------------------------------------------------------------------------


def test_a_one_liner_is_low_and_a_multi_step_pipeline_is_high() -> None:
    low = estimate_complexity(ONE_LINER, NO_EXAMPLES)
    high = estimate_complexity(PIPELINE, NO_EXAMPLES)
    assert (low.tier, high.tier) == ("low", "high")
    assert "-one-line" in low.matched
    assert {"+pipeline", "+end-to-end"} <= set(high.matched)
    assert high.signals["structure"] > 0.5  # five numbered steps


def test_code_blocks_and_numbered_steps_raise_the_structure_signal() -> None:
    plain = estimate_complexity("fix this function", NO_EXAMPLES)
    fenced = estimate_complexity("fix these\n```python\na = 1\n```\nand\n```python\nb = 2\n```", NO_EXAMPLES)
    steps = estimate_complexity("do this:\n1. parse\n2. filter\n3. plot\n4. report", NO_EXAMPLES)
    assert plain.signals["structure"] == 0
    assert fenced.signals["structure"] > plain.signals["structure"]
    assert steps.signals["structure"] > plain.signals["structure"]


def test_length_grows_on_a_log_scale_between_short_and_long() -> None:
    short = estimate_complexity("word " * 5, NO_EXAMPLES).signals["length"]
    middle = estimate_complexity("word " * 45, NO_EXAMPLES).signals["length"]
    long = estimate_complexity("word " * 5000, NO_EXAMPLES).signals["length"]
    assert short == 0
    assert long == 1
    assert 0.4 < middle < 0.6  # 45 words is about halfway between 8 and 250 on a log scale


def test_a_missing_examples_signal_leaves_the_weight_to_the_others() -> None:
    with_examples = estimate_complexity(ONE_LINER, ComplexityConfig(), examples=1.0)
    without = estimate_complexity(ONE_LINER, ComplexityConfig(), examples=None)
    assert "examples" in with_examples.signals
    assert "examples" not in without.signals
    assert with_examples.score > without.score
    assert 0 <= without.score <= 1


def test_thresholds_decide_the_tier() -> None:
    config = ComplexityConfig(examples=None, thresholds={"medium": 0.0, "high": 1.0})  # type: ignore[arg-type]
    assert estimate_complexity(ONE_LINER, config).tier == "medium"


def test_profile_indicator_lists_replace_the_built_in_ones() -> None:
    config = ComplexityConfig(examples=None, indicators={"high": ["gwas"], "low": []})  # type: ignore[arg-type]
    estimate = estimate_complexity("run a GWAS", config)
    assert estimate.matched == ("+gwas",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"thresholds": {"medium": 0.7, "high": 0.5}}, "must not be below medium"),
        ({"weights": {"length": 0, "structure": 0, "indicators": 0, "examples": 0}}, "at least one weight"),
        ({"length_words": {"short": 100, "long": 50}}, "must be above short"),
        ({"weigths": {}}, "Extra inputs are not permitted"),
    ],
)
def test_a_malformed_estimator_config_is_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ComplexityConfig.model_validate(fields)


def test_weights_need_not_sum_to_one() -> None:
    doubled = ComplexityConfig(examples=None, weights=Weights(length=0.4, structure=0.3, indicators=0.6, examples=0.7))
    assert estimate_complexity(PIPELINE, doubled).score == estimate_complexity(PIPELINE, NO_EXAMPLES).score


def test_examples_signal_follows_the_nearest_tier() -> None:
    axis = np.eye(3, dtype=np.float32)
    examples = TierExamples({"low": axis[[0]], "medium": axis[[1]], "high": axis[[2]]})
    near_high = examples.signal(np.array([0.1, 0.1, 0.99], dtype=np.float32))
    near_low = examples.signal(np.array([0.99, 0.1, 0.1], dtype=np.float32))
    assert near_high is not None
    assert near_low is not None
    assert near_high > 0.9
    assert near_low < 0.1


def test_examples_need_two_tiers_to_say_anything() -> None:
    assert TierExamples({"high": np.eye(2, dtype=np.float32)}).signal(np.ones(2)) is None


def test_shipped_tier_examples_cover_every_tier() -> None:
    from ..conftest import ROOT

    examples = read_tier_examples(ROOT / "utterances" / "complexity")
    assert set(examples) == {"low", "medium", "high"}
    assert all(len(lines) >= 15 for lines in examples.values())
    assert not any(line.startswith("#") for lines in examples.values() for line in lines)


# --- tier routes in decide() ------------------------------------------------------------------


TIERED = Route(
    group="t4-coder",
    fallbacks=("t4-generalist",),
    tiers={"high": TierRoute(group="deepseek-v3", fallbacks=("t4-coder", "t4-generalist"))},
)
PROFILE = make_profile({"code_generation": TIERED, "biomedical": Route(group="t4-bio", allow_cloud=False)})


def tiered(tier: str, **fields: object) -> Signals:
    estimate = ComplexityEstimate(score={"low": 0.1, "medium": 0.4, "high": 0.8}[tier], tier=tier)  # type: ignore[arg-type]
    return Signals(requested_model="auto", task="code_generation", confidence=0.9, complexity=estimate, **fields)  # type: ignore[arg-type]


def test_a_high_tier_request_goes_to_the_tiers_group_and_the_decision_says_why() -> None:
    decision = decide(tiered("high"), PROFILE, CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("deepseek-v3", ("t4-coder", "t4-generalist"))
    assert (decision.tier, decision.complexity) == ("high", 0.8)
    assert any(reason.startswith("complexity 0.80 -> tier high") for reason in decision.reasons)
    assert decision.headers()["x-biorouter-tier"] == "high"


def test_a_tier_the_route_does_not_list_uses_the_routes_own_group() -> None:
    decision = decide(tiered("low"), PROFILE, CATALOGUE)
    assert (decision.group, decision.tier) == ("t4-coder", "low")


def test_a_high_tier_request_that_must_stay_local_gets_the_local_groups_of_its_tier() -> None:
    decision = decide(tiered("high", sensitive_rules=("pattern:lab_sample_id",)), PROFILE, CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("t4-coder", ("t4-generalist",))
    assert decision.local_only
    assert "group 'deepseek-v3' is cloud: skipped for a local-only request" in decision.reasons


def test_without_an_estimate_the_route_is_served_as_before() -> None:
    signals = Signals(requested_model="auto", task="code_generation", confidence=0.9)
    decision = decide(signals, PROFILE, CATALOGUE)
    assert (decision.group, decision.tier) == ("t4-coder", None)


def test_a_route_without_tiers_ignores_the_estimate() -> None:
    signals = tiered("high").model_copy(update={"task": "biomedical"})
    decision = decide(signals, PROFILE, CATALOGUE)
    assert (decision.group, decision.tier) == ("t4-bio", None)


def test_a_tier_cannot_send_a_local_only_route_to_the_cloud_validate_says_so() -> None:
    local = Route(group="t4-bio", allow_cloud=False, tiers={"high": TierRoute(group="deepseek-v3")})
    profile = make_profile({"biomedical": local})
    problems = check_profile("profiles/unit.yaml", profile, CATALOGUE, {})
    assert any(
        p.location == ("routes", "biomedical", "tiers", "high", "group") and "allow_cloud: false" in p.message
        for p in problems
    )
    decision = decide(tiered("high").model_copy(update={"task": "biomedical"}), profile, CATALOGUE)
    # at run time the cloud group is skipped anyway: the default route's local group serves it
    assert (decision.group, decision.local_only) == ("t4-generalist", True)


def test_an_unknown_tier_name_is_a_shape_error() -> None:
    with pytest.raises(ValidationError, match=r"tiers\.extreme"):
        Route.model_validate({"group": "t4-coder", "tiers": {"extreme": {"group": "t4-coder"}}})


# --- who pays for the estimate ----------------------------------------------------------------


def test_only_requests_that_may_take_a_tiered_route_are_estimated() -> None:
    from biorouter.routing.profiles import ClassifierPolicy
    from biorouter.serving.engine import _may_take_a_tiered_route

    bio = Signals(requested_model="auto", task="biomedical", confidence=0.9, scores={"biomedical": 0.9})
    code = bio.model_copy(update={"task": "code_generation", "scores": {"code_generation": 0.9}})
    assert not _may_take_a_tiered_route(bio, PROFILE)  # the estimate reads the whole text: skipped
    assert _may_take_a_tiered_route(code, PROFILE)
    assert _may_take_a_tiered_route(bio.model_copy(update={"task_hint": "code_generation"}), PROFILE)
    runner_up = bio.model_copy(update={"scores": {"biomedical": 0.2, "code_generation": 0.19}})
    assert not _may_take_a_tiered_route(runner_up, PROFILE)
    safer = PROFILE.model_copy(update={"classifier": ClassifierPolicy(when_unsure="safer_of_top_two")})
    assert _may_take_a_tiered_route(runner_up, safer)  # the runner-up's route may serve an unsure request
    tiered_default = PROFILE.model_copy(update={"default_route": TIERED})
    assert _may_take_a_tiered_route(bio, tiered_default)
