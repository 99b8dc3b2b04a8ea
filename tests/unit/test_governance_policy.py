"""Local-only rules in ``decide()`` and their translation for LiteLLM: the first wall, on hand-built inputs."""

from __future__ import annotations

from typing import Any

import pytest

from biorouter.errors import KeptLocalError, RequestError
from biorouter.routing.decision import Decision, Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Behaviour, Governance, Profile, Route
from biorouter.serving.adapter import litellm_arguments, task_hint

from .test_policy import CATALOGUE, make_profile

ROUTES = {
    "code_generation": Route(group="t4-coder", fallbacks=("deepseek-v3", "t4-generalist")),
    "documentation": Route(group="deepseek-v3", fallbacks=("gpt-4o",)),
    "biomedical": Route(group="t4-bio", allow_cloud=False, fallbacks=("t4-generalist",)),
}
PROFILE = make_profile(dict(ROUTES))


def signals(task: str | None = "code_generation", confidence: float = 0.9, **kwargs: Any) -> Signals:
    base: dict[str, Any] = {"requested_model": "auto", "task": task, "confidence": confidence, "text_sha256": "cd" * 32}
    return Signals(**{**base, **kwargs})


def with_governance(profile: Profile, **settings: Any) -> Profile:
    return profile.model_copy(update={"governance": Governance(**settings)})


def test_sensitive_content_makes_any_task_local_only_and_drops_cloud_fallbacks() -> None:
    decision = decide(signals(sensitive_rules=("medical_record_number",)), PROFILE, CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("t4-coder", ("t4-generalist",))
    assert decision.local_only is True
    assert decision.local_only_rules == ("content:medical_record_number",)
    assert decision.local_only_reason == "sensitive content (medical_record_number)"
    assert "group 'deepseek-v3' is cloud: skipped for a local-only request" in decision.reasons


def test_sensitive_request_on_an_all_cloud_route_is_served_by_the_default_routes_local_group() -> None:
    decision = decide(signals("documentation", sensitive_rules=("phone_number",)), PROFILE, CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("t4-generalist", ())
    assert decision.local_only_rules == ("content:phone_number",)


def test_unsure_classification_of_a_local_only_task_still_keeps_the_request_local() -> None:
    decision = decide(signals("biomedical", 0.2), PROFILE, CATALOGUE)  # below min_confidence 0.5
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert decision.fallbacks == ()  # the default route's deepseek-v3 fallback is gone
    assert decision.local_only_rules == ("route:biomedical",)


def test_task_hint_picks_the_route() -> None:
    decision = decide(signals("biomedical", 0.05, task_hint="code_generation"), PROFILE, CATALOGUE)
    assert decision.mode == "routed"
    assert decision.task == "code_generation"
    assert decision.reasons[0] == "client task hint 'code_generation' -> route"


def test_task_hint_cannot_lift_the_local_only_rule_of_the_task_the_classifier_saw() -> None:
    decision = decide(signals("biomedical", 0.9, task_hint="code_generation"), PROFILE, CATALOGUE)
    assert decision.group == "t4-coder"
    assert decision.fallbacks == ("t4-generalist",)
    assert decision.local_only_rules == ("route:biomedical",)


def test_task_hint_cannot_lift_a_content_rule() -> None:
    hinted = signals("code_generation", task_hint="documentation", sensitive_rules=("date_of_birth",))
    decision = decide(hinted, PROFILE, CATALOGUE)
    assert decision.local_only is True
    assert decision.group == "t4-generalist"


def test_unknown_task_hint_is_a_request_error_listing_the_tasks() -> None:
    with pytest.raises(RequestError, match=r"unknown task 'genomics' in metadata.biorouter_task .*biomedical"):
        decide(signals(task_hint="genomics"), PROFILE, CATALOGUE)


@pytest.mark.parametrize("hint", [42, "", ["biomedical"]])
def test_malformed_task_hint_is_a_request_error(hint: object) -> None:
    with pytest.raises(RequestError, match=r"metadata\.biorouter_task must be a task name"):
        task_hint({"metadata": {"biorouter_task": hint}})


def test_task_hint_is_read_from_metadata_or_litellm_metadata() -> None:
    assert task_hint({"metadata": {"biorouter_task": "biomedical"}}) == "biomedical"
    assert task_hint({"litellm_metadata": {"biorouter_task": "safety"}}) == "safety"
    assert task_hint({"metadata": {"user": "x"}}) is None


def test_named_cloud_group_with_sensitive_content_is_refused_by_default() -> None:
    named = Signals(requested_model="deepseek-v3", sensitive_rules=("national_id",))
    with pytest.raises(KeptLocalError) as caught:
        decide(named, PROFILE, CATALOGUE)
    assert "names cloud group 'deepseek-v3' but must stay local (sensitive content (national_id)); refused" in str(
        caught.value
    )
    assert caught.value.rules == ("content:national_id",)


def test_named_cloud_group_of_a_local_only_task_is_refused() -> None:
    named = Signals(requested_model="gpt-4o", task="biomedical", confidence=0.8)
    with pytest.raises(KeptLocalError, match="route 'biomedical' sets allow_cloud: false"):
        decide(named, PROFILE, CATALOGUE)


def test_named_cloud_group_is_rerouted_to_local_groups_when_the_profile_says_so() -> None:
    profile = with_governance(PROFILE, sensitive_cloud_request="reroute")
    named = Signals(requested_model="deepseek-v3", task="code_generation", confidence=0.9, sensitive_rules=("x",))
    decision = decide(named, profile, CATALOGUE)
    assert decision.mode == "routed"
    assert (decision.group, decision.fallbacks) == ("t4-coder", ("t4-generalist",))
    assert decision.reasons[0] == "client asked for cloud group 'deepseek-v3' but the request is local-only: re-routed"


def test_named_local_group_with_sensitive_content_passes_through_marked_local_only() -> None:
    decision = decide(Signals(requested_model="t4-coder", sensitive_rules=("email_address",)), PROFILE, CATALOGUE)
    assert (decision.mode, decision.group) == ("passthrough", "t4-coder")
    assert decision.local_only_rules == ("content:email_address",)
    updates = litellm_arguments(decision, {"model": "t4-coder"}, PROFILE)
    # LiteLLM's configured fallbacks for the group are replaced: none, and none on context-window errors
    assert updates["fallbacks"] == []
    assert updates["context_window_fallbacks"] == []


def test_named_cloud_group_without_sensitive_content_passes_through() -> None:
    decision = decide(Signals(requested_model="deepseek-v3", task="code_generation"), PROFILE, CATALOGUE)
    assert (decision.mode, decision.group, decision.local_only) == ("passthrough", "deepseek-v3", False)


def test_local_only_request_gets_its_own_chain_for_every_kind_of_fallback() -> None:
    decision = decide(signals("biomedical"), PROFILE, CATALOGUE)
    updates = litellm_arguments(decision, {"model": "auto"}, PROFILE)
    assert updates["fallbacks"] == [{"t4-bio": ["t4-generalist"]}]
    assert updates["context_window_fallbacks"] == [{"t4-bio": ["t4-generalist"]}]
    assert updates["content_policy_fallbacks"] == []


@pytest.mark.parametrize(
    ("cache", "local_only", "expected"),
    [
        ("shared", True, {"no-cache": True, "no-store": True}),
        ("shared", False, None),
        ("on-premises", True, None),
        ("off", False, {"no-cache": True, "no-store": True}),
    ],
)
def test_local_only_requests_stay_out_of_a_shared_response_cache(
    cache: str, local_only: bool, expected: dict[str, bool] | None
) -> None:
    profile = PROFILE.model_copy(update={"behaviour": Behaviour(cache=cache)})  # type: ignore[arg-type]
    decision = decide(signals("biomedical" if local_only else "code_generation"), profile, CATALOGUE)
    assert decision.local_only is local_only
    assert litellm_arguments(decision, {"model": "auto"}, profile).get("cache") == expected


def test_decision_records_rule_names_and_a_hash_never_the_matched_text() -> None:
    decision = decide(signals(sensitive_rules=("medical_record_number",)), PROFILE, CATALOGUE)
    record = decision.model_dump_json() + decision.log_line() + str(decision.headers())
    assert "content:medical_record_number" in record
    assert "cd" * 32 in decision.model_dump_json()
    assert "00482913" not in record  # Signals never carried the text; the Decision cannot leak it


def test_headers_name_the_local_only_rules() -> None:
    decision = decide(signals("biomedical", sensitive_rules=("date_of_birth",)), PROFILE, CATALOGUE)
    headers = decision.headers()
    assert headers["x-biorouter-local-only"] == "true"
    assert headers["x-biorouter-local-only-rules"] == "content:date_of_birth,route:biomedical"


def test_kept_local_refusal_names_the_rule_and_the_cause() -> None:
    decision = Decision(
        profile="unit",
        mode="routed",
        group="t4-bio",
        local_only=True,
        local_only_rules=("route:biomedical",),
        local_only_reason="route 'biomedical' sets allow_cloud: false",
    )
    refusal = decision.kept_local(TimeoutError("upstream timed out after 2 s\ntraceback..."))
    assert str(refusal) == (
        "request kept local (route 'biomedical' sets allow_cloud: false); no local deployment could serve it: "
        "upstream timed out after 2 s"
    )
    assert refusal.rules == ("route:biomedical",)
