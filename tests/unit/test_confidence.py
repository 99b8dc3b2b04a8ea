"""Confidence: per-task thresholds, the safer-of-top-two option, and ``biorouter tune``'s proposals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from biorouter.classify.tuning import Scored, propose_margin, propose_thresholds, write_thresholds
from biorouter.errors import ConfigError
from biorouter.routing.decision import Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import ClassifierPolicy, Route, load_profile

from ..conftest import ROOT
from .test_policy import CATALOGUE, make_profile

ROUTES = {
    "safety": Route(group="t4-bio", allow_cloud=False),
    "code_generation": Route(group="t4-coder", fallbacks=("deepseek-v3",)),
    "data_analysis": Route(group="deepseek-v3", fallbacks=("t4-generalist",)),
    "biomedical": Route(group="t4-bio", allow_cloud=False),
}


def unsure_profile(**policy: object) -> object:
    profile = make_profile(ROUTES, default=Route(group="gpt-4o"))
    return profile.model_copy(update={"classifier": ClassifierPolicy(min_confidence=0.3, **policy)})  # type: ignore[arg-type]


def scored(task: str, confidence: float, second: str, second_score: float) -> Signals:
    scores = {task: confidence, second: second_score}
    return Signals(requested_model="auto", task=task, confidence=confidence, scores=scores)


# --- per-task thresholds ----------------------------------------------------------------------


def test_a_tasks_own_threshold_replaces_min_confidence_for_that_task_only() -> None:
    profile = unsure_profile(per_task={"code_generation": 0.1})
    assert decide(scored("code_generation", 0.2, "data_analysis", 0.1), profile, CATALOGUE).group == "t4-coder"
    unsure = decide(scored("data_analysis", 0.2, "code_generation", 0.1), profile, CATALOGUE)
    assert (unsure.mode, unsure.group) == ("default", "gpt-4o")
    assert "task 'data_analysis' confidence 0.200 below 0.300: default route" in unsure.reasons


def test_a_threshold_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="threshold of 'code_generation' must be between 0 and 1"):
        ClassifierPolicy(per_task={"code_generation": 1.5})


# --- safer of the top two ---------------------------------------------------------------------


def test_unsure_between_a_cloud_route_and_a_local_only_route_the_local_only_route_wins() -> None:
    profile = unsure_profile(when_unsure="safer_of_top_two")
    decision = decide(scored("data_analysis", 0.2, "biomedical", 0.18), profile, CATALOGUE)
    assert (decision.mode, decision.task, decision.group) == ("routed", "biomedical", "t4-bio")
    assert decision.local_only
    assert decision.local_only_rules == ("route:biomedical",)
    assert any(
        "safer of 'data_analysis' and 'biomedical' is 'biomedical' (keeps data local)" in r for r in decision.reasons
    )


def test_unsure_between_a_cloud_first_and_a_local_first_route_the_local_first_wins() -> None:
    profile = unsure_profile(when_unsure="safer_of_top_two")
    decision = decide(scored("data_analysis", 0.2, "code_generation", 0.19), profile, CATALOGUE)
    assert (decision.task, decision.group) == ("code_generation", "t4-coder")
    assert any("(is served locally)" in reason for reason in decision.reasons)


def test_equally_safe_routes_keep_the_better_scoring_task() -> None:
    profile = unsure_profile(when_unsure="safer_of_top_two")
    two_local = {**ROUTES, "data_analysis": Route(group="t4-generalist")}
    profile = profile.model_copy(update={"routes": two_local})  # type: ignore[attr-defined]
    decision = decide(scored("data_analysis", 0.2, "code_generation", 0.19), profile, CATALOGUE)
    assert (decision.task, decision.group) == ("data_analysis", "t4-generalist")


def test_without_the_option_an_unsure_request_still_takes_the_default_route() -> None:
    decision = decide(scored("data_analysis", 0.2, "biomedical", 0.18), unsure_profile(), CATALOGUE)
    assert (decision.mode, decision.group, decision.local_only) == ("default", "gpt-4o", False)


# --- tune: proposals ---------------------------------------------------------------------------


def example(label: str, top: str, confidence: float) -> Scored:
    other = "code_generation" if top != "code_generation" else "data_analysis"
    return Scored(label=label, scores={top: confidence, other: confidence / 2})


def test_tune_raises_a_threshold_where_low_scores_are_usually_wrong() -> None:
    profile = unsure_profile(per_task={"data_analysis": 0.1})
    # data_analysis predictions: confident ones are right, those under 0.25 are really intent_parsing,
    # whose true group (the default route, gpt-4o) is what the unsure path serves
    examples = [example("data_analysis", "data_analysis", c) for c in (0.5, 0.45, 0.4, 0.35, 0.3)]
    examples += [example("intent_parsing", "data_analysis", c) for c in (0.24, 0.22, 0.2, 0.18)]
    report = propose_thresholds(examples, profile, CATALOGUE)  # type: ignore[arg-type]
    proposal = {t.task: t for t in report.tasks}["data_analysis"]
    assert 0.24 < proposal.proposed <= 0.3  # between the highest wrong score and the lowest right one
    assert proposal.correct_after == 9
    assert proposal.correct_before == 5
    assert report.group_accuracy_after > report.group_accuracy_before


def test_tune_lowers_a_threshold_where_low_scores_are_right_and_keeps_tasks_without_evidence() -> None:
    profile = unsure_profile()
    examples = [example("code_generation", "code_generation", c) for c in (0.25, 0.2, 0.15, 0.12, 0.5)]
    examples += [example("data_analysis", "data_analysis", 0.9)]  # one example: not evidence
    report = propose_thresholds(examples, profile, CATALOGUE)  # type: ignore[arg-type]
    tasks = {t.task: t for t in report.tasks}
    assert tasks["code_generation"].proposed < 0.12
    assert tasks["data_analysis"].proposed == 0.3
    assert "fewer than 5" in tasks["data_analysis"].note
    assert report.thresholds() == {"code_generation": tasks["code_generation"].proposed}


def test_tune_writes_per_task_into_the_profile_keeping_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "development.yaml"
    path.write_text((ROOT / "profiles" / "development.yaml").read_text())
    write_thresholds(path, {"orchestration": 0.15, "safety": 0.2})
    text = path.read_text()
    assert "# development: for laptops, CI and `make run`." in text  # comments survive
    assert load_profile(path).classifier.per_task == {"orchestration": 0.15, "safety": 0.2}
    write_thresholds(path, {"safety": 0.25})  # again: replaces, never duplicates
    assert load_profile(path).classifier.per_task == {"safety": 0.25}
    assert text.count("per_task:") == path.read_text().count("per_task:")
    assert load_profile(path).routes == load_profile(ROOT / "profiles" / "development.yaml").routes


def test_tune_adds_a_classifier_section_when_there_is_none(tmp_path: Path) -> None:
    source = (ROOT / "profiles" / "development.yaml").read_text()
    start = source.index("classifier:")
    end = source.index("default_route:")
    path = tmp_path / "development.yaml"
    path.write_text(source[:start] + source[end:])
    write_thresholds(path, {"safety": 0.2})
    assert load_profile(path).classifier.per_task == {"safety": 0.2}


def test_tune_never_writes_a_profile_that_would_not_load(tmp_path: Path) -> None:
    path = tmp_path / "development.yaml"
    original = (ROOT / "profiles" / "development.yaml").read_text()
    path.write_text(original)
    with pytest.raises(ConfigError, match="not written"):
        write_thresholds(path, {"Not A Task": 0.2})
    assert path.read_text() == original


# --- prefer: a task that wins when it is close to the top ------------------------------------


def test_safety_within_its_margin_of_the_top_takes_the_request_even_when_the_top_is_sure() -> None:
    profile = unsure_profile(prefer={"safety": 0.05})
    decision = decide(scored("code_generation", 0.40, "safety", 0.36), profile, CATALOGUE)
    assert (decision.mode, decision.task, decision.group) == ("routed", "safety", "t4-bio")
    assert decision.local_only
    assert any("within 0.05 of the best 'code_generation'" in reason for reason in decision.reasons)


def test_safety_further_than_its_margin_leaves_the_best_task_in_place() -> None:
    profile = unsure_profile(prefer={"safety": 0.05})
    decision = decide(scored("code_generation", 0.40, "safety", 0.34), profile, CATALOGUE)
    assert (decision.task, decision.group) == ("code_generation", "t4-coder")


def test_without_prefer_a_close_second_safety_score_changes_nothing() -> None:
    decision = decide(scored("code_generation", 0.40, "safety", 0.399), unsure_profile(), CATALOGUE)
    assert decision.task == "code_generation"


def test_a_margin_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="margin of 'safety' must be between 0 and 1"):
        ClassifierPolicy(prefer={"safety": -0.1})


def two(label: str, top: str, top_score: float, safety: float) -> Scored:
    return Scored(label=label, scores={top: top_score, "safety": safety})


def test_margin_widens_to_win_back_harmful_requests_ranked_just_below_the_top() -> None:
    examples = [
        two("safety", "intent_parsing", 0.40, 0.37),  # gap 0.03: won back
        two("safety", "intent_parsing", 0.40, 0.35),  # gap 0.05: won back
        two("intent_parsing", "intent_parsing", 0.50, 0.44),  # gap 0.06: lost if the margin reached it
        two("intent_parsing", "intent_parsing", 0.50, 0.30),  # gap 0.20
        two("safety", "safety", 0.60, 0.60),  # already right
    ]
    proposal = propose_margin(examples, "safety", miss_cost=3.0)
    assert (proposal.recovered, proposal.lost) == (2, 0)
    assert 0.05 < proposal.margin < 0.06  # halfway between the last gap kept and the next one
    assert proposal.task_examples == 3


def test_margin_stays_zero_when_widening_costs_more_right_answers_than_it_wins() -> None:
    examples = [two("intent_parsing", "intent_parsing", 0.5, 0.49)] * 4 + [two("safety", "intent_parsing", 0.5, 0.48)]
    proposal = propose_margin(examples, "safety", miss_cost=3.0)
    assert (proposal.margin, proposal.recovered, proposal.lost) == (0.0, 0, 0)


def test_tune_never_moves_the_threshold_of_a_preferred_task() -> None:
    def with_open_safety(profile: object) -> object:  # a safety route that may leave, so unsure answers can
        routes = {**ROUTES, "safety": Route(group="t4-coder")}
        return profile.model_copy(update={"routes": routes})  # type: ignore[attr-defined]

    profile = with_open_safety(unsure_profile(prefer={"safety": 0.05}))
    # Low-scoring safety answers that are wrong would argue for a higher threshold, were safety not preferred.
    # (intent_parsing has no route here: the default route, which is also where unsure answers go.)
    examples = [example("intent_parsing", "safety", 0.4)] * 6 + [example("safety", "safety", 0.6)] * 2
    unpreferred = propose_thresholds(examples, with_open_safety(unsure_profile()), CATALOGUE)  # type: ignore[arg-type]
    assert unpreferred.thresholds()["safety"] == 0.5  # the evidence is there: halfway between 0.4 and 0.6
    report = propose_thresholds(examples, profile, CATALOGUE)  # type: ignore[arg-type]
    row = next(t for t in report.tasks if t.task == "safety")
    assert (row.proposed, row.note) == (row.current, "preferred task: kept")
    assert "safety" not in report.thresholds()
