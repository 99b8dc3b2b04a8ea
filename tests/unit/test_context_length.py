"""Context-length routing in ``decide()``: only groups whose window holds prompt + max_tokens are offered."""

from __future__ import annotations

from typing import Any

import pytest

from biorouter.errors import KeptLocalError, RequestError
from biorouter.routing.catalogue import Catalogue, Group
from biorouter.routing.decision import Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Behaviour, ClassifierPolicy, Profile, Route


def group(name: str, window: int | None, locality: str = "local") -> Group:
    return Group(name=name, locality=locality, mode="chat", deployments=1, max_input_tokens=window)  # type: ignore[arg-type]


CATALOGUE = Catalogue(
    groups={
        g.name: g
        for g in (
            group("t4-math", 4096),
            group("t4-bio", 2048),
            group("t4-generalist", 32768),
            group("h100-long", 131072),
            group("deepseek-v3", 65536, "cloud"),
        )
    }
)
PROFILE = Profile(
    version=1,
    name="unit",
    description="windows of several sizes",
    classifier=ClassifierPolicy(min_confidence=0.3),
    default_route=Route(group="t4-generalist", fallbacks=("deepseek-v3",)),
    routes={
        "math_statistics": Route(group="t4-math", fallbacks=("deepseek-v3",), max_tokens=1024),
        "biomedical": Route(group="t4-bio", allow_cloud=False, fallbacks=("deepseek-v3",)),
        "orchestration": Route(group="deepseek-v3", fallbacks=("h100-long",)),
    },
    behaviour=Behaviour(),
)


def signals(task: str, **kwargs: Any) -> Signals:
    return Signals(requested_model="auto", task=task, confidence=0.9, **kwargs)


def test_a_short_or_uncounted_prompt_keeps_its_route() -> None:
    assert decide(signals("math_statistics"), PROFILE, CATALOGUE).group == "t4-math"
    assert decide(signals("math_statistics", prompt_tokens=2000), PROFILE, CATALOGUE).group == "t4-math"


def test_prompt_plus_route_max_tokens_over_the_window_moves_to_the_fallback() -> None:
    decision = decide(signals("math_statistics", prompt_tokens=3500), PROFILE, CATALOGUE)  # 3500 + 1024 > 4096
    assert decision.group == "deepseek-v3"
    assert any("'t4-math' holds 4096 tokens, the request needs 4524" in reason for reason in decision.reasons)


def test_the_clients_max_tokens_counts_instead_of_the_routes() -> None:
    fits = decide(signals("math_statistics", prompt_tokens=3500, max_tokens=500), PROFILE, CATALOGUE)
    assert fits.group == "t4-math"


def test_a_local_only_request_too_long_for_its_route_goes_to_a_local_group_that_holds_it() -> None:
    decision = decide(signals("biomedical", prompt_tokens=6000), PROFILE, CATALOGUE)
    assert decision.local_only
    assert decision.group == "t4-generalist"  # the default route's local group, never the cloud fallback
    assert "deepseek-v3" not in decision.fallbacks


def test_when_the_chain_is_too_small_a_larger_group_of_the_profile_serves() -> None:
    decision = decide(signals("biomedical", prompt_tokens=50_000), PROFILE, CATALOGUE)
    assert decision.group == "h100-long"
    assert any("too small for 50000 tokens" in reason for reason in decision.reasons)


def test_a_local_only_request_only_a_cloud_group_could_hold_is_kept_local() -> None:
    small = Catalogue(groups={name: g for name, g in CATALOGUE.groups.items() if name != "h100-long"})
    with pytest.raises(KeptLocalError):
        decide(signals("biomedical", prompt_tokens=50_000), PROFILE, small)


def test_a_request_no_group_can_hold_is_refused_before_any_call_with_the_sizes() -> None:
    with pytest.raises(RequestError, match=r"needs 200100 tokens .*\(largest: 'h100-long', 131072\)"):
        decide(signals("math_statistics", prompt_tokens=200_000, max_tokens=100), PROFILE, CATALOGUE)
