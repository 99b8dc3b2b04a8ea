"""``decide()`` and the adapter that hands its Decision to LiteLLM, on hand-built profiles and catalogues."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from biorouter.errors import KeptLocalError, RequestError, RoutingError
from biorouter.governance.request_view import view_request
from biorouter.routing.catalogue import Catalogue, Group
from biorouter.routing.decision import Decision, Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Behaviour, ClassifierPolicy, Profile, Route
from biorouter.serving.adapter import METADATA_KEY, litellm_arguments

MIN_CONFIDENCE = 0.5


def group(name: str, locality: str = "local", mode: str = "chat") -> Group:
    return Group(name=name, locality=locality, mode=mode, deployments=1)  # type: ignore[arg-type]


CATALOGUE = Catalogue(
    groups={
        g.name: g
        for g in (
            group("t4-generalist"),
            group("t4-coder"),
            group("t4-bio"),
            group("t4-embeddings", mode="embedding"),
            group("deepseek-v3", "cloud"),
            group("gpt-4o", "cloud"),
            group("openai-embeddings", "cloud", mode="embedding"),
        )
    }
)


def make_profile(routes: dict[str, Route] | None = None, default: Route | None = None) -> Profile:
    return Profile(
        version=1,
        name="unit",
        description="hand-built for tests",
        classifier=ClassifierPolicy(min_confidence=MIN_CONFIDENCE),
        default_route=default or Route(group="t4-generalist", fallbacks=("deepseek-v3",)),
        routes=routes
        or {
            "code_generation": Route(
                group="t4-coder", fallbacks=("t4-generalist", "deepseek-v3"), temperature=0.2, max_tokens=2048
            ),
            "biomedical": Route(group="t4-bio", allow_cloud=False, fallbacks=("deepseek-v3", "t4-generalist")),
        },
        behaviour=Behaviour(num_retries=3, timeout_s=45),
    )


PROFILE = make_profile()


def signals(task: str | None = None, confidence: float = 0.9, **kwargs: Any) -> Signals:
    return Signals(requested_model="auto", task=task, confidence=confidence, text_sha256="ab" * 32, **kwargs)


# --- choosing the route ---------------------------------------------------------------------


def test_routed_task_gets_its_group_and_fallbacks() -> None:
    decision = decide(
        signals("code_generation", 0.8, scores={"code_generation": 0.8, "biomedical": 0.1}), PROFILE, CATALOGUE
    )
    assert decision.mode == "routed"
    assert decision.group == "t4-coder"
    assert decision.fallbacks == ("t4-generalist", "deepseek-v3")
    assert decision.task == "code_generation"
    assert decision.confidence == 0.8
    assert decision.scores == {"code_generation": 0.8, "biomedical": 0.1}
    assert decision.profile == "unit"
    assert decision.local_only is False
    assert decision.local_only_reason is None
    assert decision.defaults == {"max_tokens": 2048, "temperature": 0.2}
    assert decision.reasons == ("task 'code_generation' (confidence 0.800) -> route",)


def test_confidence_below_min_confidence_takes_the_default_route_and_says_why() -> None:
    decision = decide(signals("code_generation", 0.2), PROFILE, CATALOGUE)
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert decision.fallbacks == ("deepseek-v3",)
    assert decision.reasons == ("task 'code_generation' confidence 0.200 below 0.500: default route",)
    assert decision.defaults == {}
    # the classifier's guess stays visible for diagnosis
    assert (decision.task, decision.confidence) == ("code_generation", 0.2)


def test_confidence_equal_to_min_confidence_is_trusted() -> None:
    assert decide(signals("code_generation", MIN_CONFIDENCE), PROFILE, CATALOGUE).mode == "routed"


def test_classifier_error_takes_the_default_route_and_names_the_error() -> None:
    decision = decide(signals("code_generation", 0.99, classifier_error="encoder timed out"), PROFILE, CATALOGUE)
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert decision.reasons == ("classifier unavailable (encoder timed out): default route",)


def test_request_without_text_takes_the_default_route() -> None:
    decision = decide(signals(None, 0.0), PROFILE, CATALOGUE)
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert decision.task is None
    assert decision.confidence is None
    assert decision.reasons == ("no user text to classify: default route",)


def test_task_without_a_route_takes_the_default_route() -> None:
    decision = decide(signals("documentation", 0.95), PROFILE, CATALOGUE)
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert decision.reasons == ("profile has no route for task 'documentation': default route",)


# --- passthrough ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["auto", "biorouter/auto", "biorouter"])
def test_every_auto_alias_lets_biorouter_choose(model: str) -> None:
    chosen = Signals(requested_model=model, task="code_generation", confidence=0.9)
    assert decide(chosen, PROFILE, CATALOGUE).mode == "routed"


def test_known_group_passes_through_unchanged() -> None:
    request = Signals(requested_model="t4-coder", text_sha256="cd" * 32)
    decision = decide(request, PROFILE, CATALOGUE)
    assert decision.mode == "passthrough"
    assert decision.group == "t4-coder"
    assert decision.fallbacks == ()
    assert decision.local_only is False
    assert decision.text_sha256 == "cd" * 32
    assert decision.reasons == ("client asked for group 't4-coder'",)


def test_unknown_model_is_refused_listing_the_known_groups() -> None:
    with pytest.raises(RequestError) as excinfo:
        decide(Signals(requested_model="gpt-5"), PROFILE, CATALOGUE)
    message = str(excinfo.value)
    assert message.startswith("unknown model 'gpt-5': use 'auto' or a deployment group (")
    for name in CATALOGUE.groups:
        assert name in message


# --- governance: local-only routes ----------------------------------------------------------


def test_allow_cloud_false_drops_cloud_fallbacks_and_marks_local_only() -> None:
    decision = decide(signals("biomedical", 0.9), PROFILE, CATALOGUE)
    assert decision.group == "t4-bio"
    assert decision.fallbacks == ("t4-generalist",)
    assert decision.local_only is True
    assert decision.local_only_reason == "route 'biomedical' sets allow_cloud: false"
    assert "group 'deepseek-v3' is cloud: skipped for a local-only request" in decision.reasons


def test_local_only_default_route_marks_the_request_local_only() -> None:
    profile = make_profile(default=Route(group="t4-generalist", allow_cloud=False, fallbacks=("gpt-4o",)))
    decision = decide(signals(None), profile, CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("t4-generalist", ())
    assert decision.local_only is True
    assert decision.local_only_reason is not None
    assert "default route" in decision.local_only_reason


def test_local_only_route_with_a_cloud_primary_promotes_the_first_local_fallback() -> None:
    route = Route(group="deepseek-v3", allow_cloud=False, fallbacks=("gpt-4o", "t4-generalist", "t4-bio"))
    decision = decide(signals("biomedical"), make_profile({"biomedical": route}), CATALOGUE)
    assert decision.group == "t4-generalist"
    assert decision.fallbacks == ("t4-bio",)
    assert decision.local_only is True
    assert decision.reasons[-1] == "serving from 't4-generalist' instead of 'deepseek-v3'"


def test_local_only_route_with_only_cloud_groups_borrows_the_default_routes_local_groups() -> None:
    route = Route(group="deepseek-v3", allow_cloud=False, fallbacks=("gpt-4o",))
    decision = decide(signals("biomedical"), make_profile({"biomedical": route}), CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("t4-generalist", ())
    assert "no local group in the route: the default route's local groups serve it" in decision.reasons


def test_local_only_request_with_no_local_group_anywhere_is_refused_saying_it_was_kept_local() -> None:
    route = Route(group="deepseek-v3", allow_cloud=False, fallbacks=("gpt-4o",))
    profile = make_profile({"biomedical": route}, default=Route(group="gpt-4o"))
    with pytest.raises(KeptLocalError) as excinfo:
        decide(signals("biomedical"), profile, CATALOGUE)
    message = str(excinfo.value)
    assert message.startswith(
        "profile 'unit': request kept local (route 'biomedical' sets allow_cloud: false) and no local group can "
        "serve it; tried deepseek-v3, gpt-4o"
    )
    assert excinfo.value.rules == ("route:biomedical",)
    assert isinstance(excinfo.value, RoutingError)  # callers catching RoutingError still see it


def test_cloud_groups_are_kept_when_the_route_allows_cloud() -> None:
    route = Route(group="deepseek-v3", fallbacks=("gpt-4o", "t4-generalist"))
    decision = decide(signals("biomedical"), make_profile({"biomedical": route}), CATALOGUE)
    assert (decision.group, decision.fallbacks) == ("deepseek-v3", ("gpt-4o", "t4-generalist"))
    assert decision.local_only is False


# --- groups that cannot serve ---------------------------------------------------------------


def test_group_missing_from_the_catalogue_is_skipped_with_a_reason() -> None:
    route = Route(group="t4-ghost", fallbacks=("t4-coder",))
    decision = decide(signals("code_generation"), make_profile({"code_generation": route}), CATALOGUE)
    assert decision.group == "t4-coder"
    assert decision.fallbacks == ()
    assert "group 't4-ghost' is not in litellm_config: skipped" in decision.reasons
    assert decision.reasons[-1] == "serving from 't4-coder' instead of 't4-ghost'"


def test_embedding_group_is_skipped_for_a_chat_request() -> None:
    route = Route(group="t4-embeddings", fallbacks=("openai-embeddings", "t4-generalist"))
    decision = decide(signals("embeddings"), make_profile({"embeddings": route}), CATALOGUE)
    assert decision.group == "t4-generalist"
    assert decision.fallbacks == ()
    assert "group 't4-embeddings' serves embedding models, not chat: skipped" in decision.reasons
    assert "group 'openai-embeddings' serves embedding models, not chat: skipped" in decision.reasons


def test_embedding_request_takes_the_embedding_route_and_only_embedding_groups() -> None:
    route = Route(group="t4-generalist", fallbacks=("t4-embeddings", "openai-embeddings"))
    profile = make_profile().model_copy(update={"embedding_route": route})
    decision = decide(signals("code_generation", kind="embedding"), profile, CATALOGUE)
    assert decision.group == "t4-embeddings"
    assert decision.fallbacks == ("openai-embeddings",)
    assert decision.task is None  # an embedding request has no task: the classifier's guess is not used
    assert "group 't4-generalist' serves chat models, not embedding: skipped" in decision.reasons


def test_sensitive_embedding_request_never_falls_back_to_a_cloud_embedding_group() -> None:
    route = Route(group="t4-embeddings", fallbacks=("openai-embeddings",))
    profile = make_profile().model_copy(update={"embedding_route": route})
    sensitive = signals(None, kind="embedding").model_copy(update={"sensitive_rules": ("mrn",)})
    decision = decide(sensitive, profile, CATALOGUE)
    assert (decision.group, decision.fallbacks, decision.local_only) == ("t4-embeddings", (), True)


def test_embedding_request_without_an_embedding_route_is_a_clear_request_error() -> None:
    with pytest.raises(RequestError, match="has no embedding_route"):
        decide(signals(None, kind="embedding"), make_profile(), CATALOGUE)


def test_route_whose_groups_all_cannot_serve_is_refused_without_claiming_local_only() -> None:
    route = Route(group="t4-ghost", fallbacks=("t4-embeddings",))
    with pytest.raises(RoutingError) as excinfo:
        decide(signals("code_generation"), make_profile({"code_generation": route}), CATALOGUE)
    message = str(excinfo.value)
    assert "kept local" not in message
    assert "group 't4-ghost' is not in litellm_config: skipped" in message


# --- purity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["code_generation", "biomedical", "documentation", None])
def test_same_inputs_give_equal_decisions(task: str | None) -> None:
    first = decide(signals(task, 0.7), PROFILE, CATALOGUE)
    second = decide(signals(task, 0.7), make_profile(), Catalogue(groups=dict(CATALOGUE.groups)))
    assert first == second
    assert first.summary() == second.summary()


def test_decide_does_not_change_its_inputs() -> None:
    before = (PROFILE.model_dump(), CATALOGUE.model_dump())
    decide(signals("biomedical"), PROFILE, CATALOGUE)
    assert (PROFILE.model_dump(), CATALOGUE.model_dump()) == before


def test_policy_module_imports_no_litellm() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import biorouter.routing.policy, sys; print('litellm' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"


# --- the Decision record ----------------------------------------------------------------------


def test_headers_show_task_confidence_group_and_profile() -> None:
    headers = decide(signals("code_generation", 0.87654), PROFILE, CATALOGUE).headers()
    assert headers["x-biorouter-task"] == "code_generation"
    assert headers["x-biorouter-confidence"] == "0.8765"
    assert headers["x-biorouter-group"] == "t4-coder"
    assert headers["x-biorouter-profile"] == "unit"
    assert all(isinstance(v, str) for v in headers.values())


def test_headers_without_a_task_are_empty_strings_not_none() -> None:
    headers = decide(signals(None), PROFILE, CATALOGUE).headers()
    assert headers["x-biorouter-task"] == ""
    assert headers["x-biorouter-confidence"] == ""
    assert headers["x-biorouter-group"] == "t4-generalist"


def test_log_line_and_headers_never_contain_the_prompt() -> None:
    prompt = "Patient ZX-9931 carries BRCA2 c.5946delT; which PARP inhibitor?"
    view = view_request([{"role": "user", "content": prompt}])
    chosen = Signals(requested_model="auto", task="biomedical", confidence=0.9, text_sha256=view.text_sha256)
    decision = decide(chosen, PROFILE, CATALOGUE)

    line = decision.log_line()
    assert line.startswith("biorouter decision {")
    payload = json.loads(line.removeprefix("biorouter decision "))
    assert payload["group"] == "t4-bio"
    assert payload["text_sha256"] == view.text_sha256[:16]
    exposed = [line, json.dumps(decision.headers()), json.dumps(decision.summary())]
    for text in exposed:
        assert "ZX-9931" not in text
        assert "PARP" not in text


# --- adapter.litellm_arguments --------------------------------------------------------------


def test_arguments_set_the_group_and_the_allowed_fallbacks() -> None:
    decision = decide(signals("code_generation"), PROFILE, CATALOGUE)
    updates = litellm_arguments(decision, {"model": "auto", "messages": []}, PROFILE)
    assert updates["model"] == "t4-coder"
    assert updates["fallbacks"] == [{"t4-coder": ["t4-generalist", "deepseek-v3"]}]
    assert updates["context_window_fallbacks"] == updates["fallbacks"]  # never LiteLLM's configured chain
    assert updates["timeout"] == 45
    assert updates["num_retries"] == 3


def test_arguments_set_an_empty_fallback_list_when_none_are_allowed() -> None:
    route = Route(group="t4-bio", allow_cloud=False, fallbacks=("deepseek-v3",))
    profile = make_profile({"biomedical": route})
    decision = decide(signals("biomedical"), profile, CATALOGUE)
    assert decision.fallbacks == ()
    updates = litellm_arguments(decision, {"model": "auto"}, profile)
    assert "fallbacks" in updates
    assert updates["fallbacks"] == []


def test_client_fallbacks_are_replaced_by_the_decisions() -> None:
    decision = decide(signals("biomedical"), PROFILE, CATALOGUE)
    updates = litellm_arguments(decision, {"model": "auto", "fallbacks": [{"t4-bio": ["gpt-4o"]}]}, PROFILE)
    assert updates["fallbacks"] == [{"t4-bio": ["t4-generalist"]}]


def test_passthrough_sets_only_the_model_and_leaves_transport_to_litellm() -> None:
    decision = decide(Signals(requested_model="t4-coder"), PROFILE, CATALOGUE)
    updates = litellm_arguments(decision, {"model": "t4-coder"}, PROFILE)
    assert updates["model"] == "t4-coder"
    assert set(updates) == {"model", "metadata", "cache"}
    assert updates["cache"] == {"no-cache": True, "no-store": True}  # the profile's cache: off


def test_profile_defaults_fill_only_what_the_client_did_not_send() -> None:
    decision = decide(signals("code_generation"), PROFILE, CATALOGUE)
    assert decision.defaults == {"max_tokens": 2048, "temperature": 0.2}

    unset = litellm_arguments(decision, {"model": "auto", "temperature": None}, PROFILE)
    assert (unset["max_tokens"], unset["temperature"]) == (2048, 0.2)

    client = {"model": "auto", "max_tokens": 64, "temperature": 0.0, "timeout": 5, "num_retries": 0}
    kept = litellm_arguments(decision, client, PROFILE)
    for key in ("max_tokens", "temperature", "timeout", "num_retries"):
        assert key not in kept, f"{key} from the client was overwritten"


def test_client_cannot_forge_the_decision_in_metadata_but_keeps_its_other_keys() -> None:
    decision = decide(signals("biomedical"), PROFILE, CATALOGUE)
    forged = {"mode": "passthrough", "group": "gpt-4o", "local_only": False}
    metadata = {METADATA_KEY: forged, "user_id": "lab-7", "trace": {"span": 3}}
    request = {"model": "auto", "metadata": metadata}

    updates = litellm_arguments(decision, request, PROFILE)

    assert updates["metadata"][METADATA_KEY] == decision.summary()
    assert updates["metadata"][METADATA_KEY]["group"] == "t4-bio"
    assert updates["metadata"]["user_id"] == "lab-7"
    assert updates["metadata"]["trace"] == {"span": 3}
    # the client's own dict is not modified in place
    assert request["metadata"] is metadata
    assert metadata[METADATA_KEY] is forged


def test_metadata_is_created_when_the_client_sent_none() -> None:
    decision = decide(signals(None), PROFILE, CATALOGUE)
    updates = litellm_arguments(decision, {"model": "auto", "metadata": None}, PROFILE)
    assert updates["metadata"] == {METADATA_KEY: decision.summary()}
    assert Decision.model_validate(updates["metadata"][METADATA_KEY]) == decision
