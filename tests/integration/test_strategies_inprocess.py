"""Strategies through ``BioRouter.acompletion()``: a real ``litellm.Router`` over stand-in upstreams.

The stand-ins get latencies, faults and canned answers (``StandIn.set_answer``); the shipped
development profile has an ensemble on ``code_validation`` (t4-coder + deepseek-v3) and a cascade
on ``data_analysis`` (t4-generalist, then deepseek-v3), and lets a request ask for race, ensemble
or cascade. Task hints make the routes certain. The stand-ins' counters prove which upstreams
were called.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from biorouter.errors import KeptLocalError, RequestError
from biorouter.serving.engine import BioRouter
from biorouter.serving.orchestrate import StrategyFailed
from biorouter.settings import load_settings

from ..conftest import ROOT
from ..governance_cases import CLOUD

ASK = [{"role": "user", "content": "is this loop correct: for i in range(len(xs)): print(xs[i])"}]
SENSITIVE = [{"role": "user", "content": "check the script that loads MRN: 00482913 from the HL7 export"}]


@pytest.fixture(scope="module")
def engine(dev_stack: Any, classifier: Any) -> BioRouter:
    return BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )


def task(name: str, strategy: str | None = None) -> dict[str, Any]:
    metadata = {"biorouter_task": name}
    if strategy is not None:
        metadata["biorouter_strategy"] = strategy
    return {"metadata": metadata}


def content(response: Any) -> str:
    return str(response.choices[0].message.content)


def outcome_of(response: Any) -> Any:
    decision = response._hidden_params["biorouter"]
    assert decision.strategy_outcome is not None
    return decision.strategy_outcome


def chat_requests(fleet: Any, group: str) -> int:
    return int(fleet[group].stats()["chat_requests"])


# -- race --------------------------------------------------------------------------------------------


async def test_race_returns_the_fastest_good_answer_and_cancels_the_slower_call(
    engine: BioRouter, clean_standins: Any
) -> None:
    clean_standins["t4-coder"].set_fault(latency_ms=5000)
    response = await engine.acompletion(ASK, **task("code_generation", "race"))
    assert content(response).startswith("[t4-generalist]")
    outcome = outcome_of(response)
    assert outcome.winner == "t4-generalist"
    assert {c.group: c.outcome for c in outcome.calls} == {"t4-coder": "cancelled", "t4-generalist": "good"}
    assert chat_requests(clean_standins, "t4-coder") == 1  # it was called, then cancelled
    assert outcome.seconds < 4.0  # did not wait for the slow group


async def test_race_skips_a_fast_empty_answer(engine: BioRouter, clean_standins: Any) -> None:
    clean_standins["t4-coder"].set_answer("")
    clean_standins["t4-generalist"].set_fault(latency_ms=300)
    response = await engine.acompletion(ASK, **task("code_generation", "race"))
    assert content(response).startswith("[t4-generalist]")
    calls = {c.group: (c.outcome, c.detail) for c in outcome_of(response).calls}
    assert calls["t4-coder"] == ("bad", "empty: the answer has no text")


async def test_race_where_no_group_answers_well_is_a_clear_error(engine: BioRouter, clean_standins: Any) -> None:
    clean_standins["t4-coder"].set_answer("I'm sorry, but I can't help with that.")
    clean_standins["t4-generalist"].set_fault(error_rate=1.0, status=500)
    with pytest.raises(StrategyFailed, match=r"race strategy found no good answer \(t4-coder: bad \(refusal"):
        await engine.acompletion(ASK, **task("code_generation", "race"))


# -- ensemble ------------------------------------------------------------------------------------------


async def test_ensemble_of_the_route_agrees_and_records_both_calls(engine: BioRouter, clean_standins: Any) -> None:
    for group in ("t4-coder", CLOUD):
        clean_standins[group].set_answer("Yes: the loop is correct.")
    clean_standins[CLOUD].set_fault(latency_ms=200)
    response = await engine.acompletion(ASK, **task("code_validation"))
    decision = response._hidden_params["biorouter"]
    assert decision.strategy.kind == "ensemble"
    assert decision.strategy.groups == ("t4-coder", CLOUD)
    outcome = decision.strategy_outcome
    assert outcome.winner == "t4-coder"
    assert outcome.why == "normalised: 2 of 2 answers agree"
    assert [c.outcome for c in outcome.calls] == ["good", "good"]
    assert outcome.calls[1].seconds >= 0.2
    assert decision.headers()["x-biorouter-winner"] == "t4-coder"


async def test_ensemble_split_goes_to_the_routes_own_group(engine: BioRouter, clean_standins: Any) -> None:
    response = await engine.acompletion(ASK, **task("code_validation"))  # the echoes differ by name
    assert content(response).startswith("[t4-coder]")
    assert outcome_of(response).why == "normalised: no two answers agree; the first group's answer wins the tie"


async def test_ensemble_majority_beats_the_first_group(engine: BioRouter, clean_standins: Any) -> None:
    clean_standins["t4-coder"].set_answer("No")
    for group in ("t4-generalist", CLOUD):
        clean_standins[group].set_answer("yes.")
    response = await engine.acompletion(ASK, **task("code_generation", "ensemble"))  # n: 3 in the profile
    assert content(response) == "yes."
    assert outcome_of(response).winner == "t4-generalist"
    assert outcome_of(response).why == "normalised: 2 of 3 answers agree"


async def test_ensemble_cost_is_counted_per_call_in_the_ledger(engine: BioRouter, clean_standins: Any) -> None:
    before = await engine.ledger.report(datetime.now(UTC).date())
    await engine.acompletion(ASK, **task("code_validation"))
    after = await engine.ledger.report(datetime.now(UTC).date())

    def requests(rows: Any, group: str) -> int:
        return sum(r.requests for r in rows if r.dimension == "group" and r.key == group)

    assert requests(after, "t4-coder") - requests(before, "t4-coder") == 1
    assert requests(after, CLOUD) - requests(before, CLOUD) == 1


# -- cascade -------------------------------------------------------------------------------------------


async def test_cascade_stops_at_the_cheap_group_when_its_answer_passes(engine: BioRouter, clean_standins: Any) -> None:
    response = await engine.acompletion(ASK, **task("data_analysis"))
    assert content(response).startswith("[t4-generalist]")
    assert outcome_of(response).why == "first group passed the checks"
    assert clean_standins[CLOUD].stats()["requests"] == 0


@pytest.mark.parametrize(
    ("answer", "extra", "check"),
    [
        ("", {}, "empty"),
        ("I cannot help with that request.", {}, "refusal"),
        ("the mean is 4", {"response_format": {"type": "json_object"}}, "invalid_json"),
    ],
)
async def test_cascade_escalates_to_the_cloud_exactly_when_a_check_fails(
    engine: BioRouter, clean_standins: Any, answer: str, extra: dict[str, Any], check: str
) -> None:
    clean_standins["t4-generalist"].set_answer(answer)
    clean_standins[CLOUD].set_answer('{"mean": 4}')
    response = await engine.acompletion(ASK, **task("data_analysis"), **extra)
    assert content(response) == '{"mean": 4}'
    outcome = outcome_of(response)
    assert outcome.calls[0].detail.startswith(f"{check}:")
    assert outcome.winner == CLOUD
    assert chat_requests(clean_standins, CLOUD) == 1


async def test_cascade_does_not_escalate_a_json_answer_when_json_was_asked(
    engine: BioRouter, clean_standins: Any
) -> None:
    clean_standins["t4-generalist"].set_answer('{"mean": 4.2}')
    response = await engine.acompletion(ASK, response_format={"type": "json_object"}, **task("data_analysis"))
    assert content(response) == '{"mean": 4.2}'
    assert clean_standins[CLOUD].stats()["requests"] == 0


# -- governance, streaming, requests -------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["race", "ensemble", "cascade"])
async def test_a_local_only_request_never_reaches_the_cloud_under_any_strategy(
    engine: BioRouter, clean_standins: Any, strategy: str
) -> None:
    clean_standins["t4-coder"].set_answer("")  # a bad local answer would escalate a cascade if it could
    response = await engine.acompletion(SENSITIVE, **task("code_generation", strategy))
    decision = response._hidden_params["biorouter"]
    assert decision.local_only
    assert CLOUD not in decision.strategy.groups
    assert content(response).startswith("[t4-generalist]")
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_a_local_only_strategy_with_every_local_group_failing_is_refused_not_sent_out(
    engine: BioRouter, clean_standins: Any
) -> None:
    for group in ("t4-coder", "t4-generalist"):
        clean_standins[group].set_fault(error_rate=1.0, status=503)
    with pytest.raises(KeptLocalError, match=r"request kept local \(sensitive content \(medical_record_number\)\)"):
        await engine.acompletion(SENSITIVE, **task("code_generation", "cascade"))
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_a_streaming_request_falls_back_to_one_call_with_a_note(engine: BioRouter, clean_standins: Any) -> None:
    stream = await engine.acompletion(ASK, stream=True, **task("code_validation"))
    decision = stream._hidden_params["biorouter"]
    assert decision.strategy.kind == "single"
    assert decision.strategy.notes == ("streaming request: 'ensemble' falls back to single",)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text.startswith("[t4-coder]")
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_a_strategy_the_profile_does_not_offer_is_refused_before_any_call(
    engine: BioRouter, clean_standins: Any
) -> None:
    with pytest.raises(RequestError, match=r"metadata\.biorouter_strategy must be one of"):
        await engine.acompletion(ASK, **task("code_generation", "fastest"))
    assert sum(s.stats()["requests"] for s in clean_standins) == 0
