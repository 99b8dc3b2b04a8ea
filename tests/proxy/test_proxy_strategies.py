"""Strategies through the real ``litellm`` proxy: the ``biorouter-strategy`` custom provider.

The client sends one ordinary chat request and gets one chat completion; the hook sends a request
whose plan fans out to the pseudo group, whose handler runs the plan against the proxy's own
router. The stand-ins' counters prove which upstreams were called; the headers show the plan and
its outcome.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from biorouter.serving.audit import read_records

from ..governance_cases import CLOUD

ASK = "is this loop correct: for i in range(len(xs)): print(xs[i])"
SENSITIVE = "check the script that loads MRN: 00482913 from the HL7 export"


def post(dev_stack: Any, text: str, task: str, strategy: str | None = None, **extra: Any) -> httpx.Response:
    metadata: dict[str, Any] = {"biorouter_task": task}
    if strategy is not None:
        metadata["biorouter_strategy"] = strategy
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "metadata": metadata, **extra}
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    return httpx.post(dev_stack.proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def answer(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_race_answers_from_the_fastest_group_and_says_so_in_the_headers(dev_stack: Any, clean_standins: Any) -> None:
    clean_standins["t4-coder"].set_fault(latency_ms=4000)
    response = post(dev_stack, ASK, "code_generation", "race")
    assert answer(response).startswith("[t4-generalist]")
    headers = response.headers
    assert headers["x-biorouter-strategy"] == "race"
    assert headers["x-biorouter-winner"] == "t4-generalist"
    assert headers["x-biorouter-strategy-groups"] == "t4-coder,t4-generalist"
    assert float(headers["x-biorouter-strategy-seconds"]) < 3.0  # the slow call was cancelled, not awaited
    assert headers["x-biorouter-group"] == "t4-coder"  # the Decision itself is unchanged


def test_the_routes_ensemble_calls_both_groups_and_votes(dev_stack: Any, clean_standins: Any) -> None:
    for group in ("t4-coder", CLOUD):
        clean_standins[group].set_answer("Yes, the loop is correct.")
    response = post(dev_stack, ASK, "code_validation")
    assert answer(response) == "Yes, the loop is correct."
    assert response.headers["x-biorouter-strategy"] == "ensemble"
    assert response.headers["x-biorouter-winner"] == "t4-coder"
    assert response.headers["x-biorouter-strategy-why"] == "normalised: 2 of 2 answers agree"
    assert clean_standins["t4-coder"].stats()["chat_requests"] == 1
    assert clean_standins[CLOUD].stats()["chat_requests"] == 1


def test_cascade_escalates_on_a_refusal_and_stops_at_the_first_pass(dev_stack: Any, clean_standins: Any) -> None:
    clean_standins["t4-generalist"].set_answer("I'm sorry, but I cannot help with that.")
    response = post(dev_stack, "summarise these read counts: S1 12M, S2 3M", "data_analysis")
    assert answer(response).startswith(f"[{CLOUD}]")
    assert response.headers["x-biorouter-winner"] == CLOUD
    assert response.headers["x-biorouter-strategy-why"] == "escalated 1 time(s); passed the checks"


def test_cascade_with_a_good_cheap_answer_never_calls_the_cloud(dev_stack: Any, clean_standins: Any) -> None:
    response = post(dev_stack, "summarise these read counts: S1 12M, S2 3M", "data_analysis")
    assert answer(response).startswith("[t4-generalist]")
    assert clean_standins[CLOUD].stats()["requests"] == 0


@pytest.mark.parametrize("strategy", ["race", "ensemble", "cascade"])
def test_a_local_only_request_never_reaches_the_cloud_under_any_strategy(
    dev_stack: Any, clean_standins: Any, strategy: str
) -> None:
    clean_standins["t4-coder"].set_answer("")  # a bad local answer: a cascade would escalate if it could
    response = post(dev_stack, SENSITIVE, "code_generation", strategy)
    assert answer(response).startswith("[t4-generalist]")
    assert response.headers["x-biorouter-local-only"] == "true"
    assert CLOUD not in response.headers["x-biorouter-strategy-groups"]
    assert clean_standins[CLOUD].stats()["requests"] == 0


def test_a_local_only_fan_out_that_fails_everywhere_is_a_503_naming_the_rule(
    dev_stack: Any, clean_standins: Any
) -> None:
    for group in ("t4-coder", "t4-generalist"):
        clean_standins[group].set_fault(error_rate=1.0, status=503)
    response = post(dev_stack, SENSITIVE, "code_generation", "race")
    assert response.status_code == 503
    assert "request kept local (sensitive content (medical_record_number))" in response.json()["error"]["message"]
    assert clean_standins[CLOUD].stats()["requests"] == 0


def test_a_fan_out_without_a_good_answer_is_a_clear_error(dev_stack: Any, clean_standins: Any) -> None:
    for group in ("t4-coder", CLOUD):
        clean_standins[group].set_answer("")
    response = post(dev_stack, ASK, "code_validation")
    assert response.status_code >= 500
    message = response.json()["error"]["message"]
    assert "ensemble strategy found no good answer (t4-coder: bad (empty: the answer has no text)" in message


def test_a_streaming_request_is_answered_by_one_call_with_a_note(dev_stack: Any, clean_standins: Any) -> None:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    body = {
        "model": "auto",
        "stream": True,
        "messages": [{"role": "user", "content": ASK}],
        "metadata": {"biorouter_task": "code_validation"},
    }
    with httpx.stream(
        "POST", dev_stack.proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-biorouter-strategy"] == "single"
        assert response.headers["x-biorouter-strategy-notes"] == "streaming request: 'ensemble' falls back to single"
        text = "".join(response.iter_text())
    assert "[t4-coder]" in text
    assert clean_standins[CLOUD].stats()["requests"] == 0


def test_a_strategy_the_profile_does_not_allow_is_a_400(dev_stack: Any, clean_standins: Any) -> None:
    response = post(dev_stack, ASK, "code_generation", "fastest")
    assert response.status_code == 400
    assert "metadata.biorouter_strategy must be one of" in response.json()["error"]["message"]
    assert sum(s.stats()["requests"] for s in clean_standins) == 0


def test_a_local_only_strategy_is_audited_once_with_the_winning_deployment(dev_stack: Any, clean_standins: Any) -> None:
    response = post(dev_stack, SENSITIVE, "code_generation", "cascade")
    assert answer(response).startswith("[t4-coder]")
    request_id = response.headers["x-litellm-call-id"]
    path = dev_stack.run_dir / "audit.jsonl"
    deadline = time.monotonic() + 10
    found: list[Any] = []
    while time.monotonic() < deadline and not found:
        found = [r for r in read_records(path) if r.request_id == request_id] if path.exists() else []
        time.sleep(0.1)
    assert len(found) == 1
    assert found[0].group == "t4-coder"
    assert found[0].locality == "local"


def test_concurrent_strategy_requests_each_get_their_own_answer(dev_stack: Any, clean_standins: Any) -> None:
    async def ask_all() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
        async with httpx.AsyncClient(base_url=dev_stack.proxy.url, headers=headers, timeout=60) as client:
            bodies = [
                {
                    "model": "auto",
                    "messages": [{"role": "user", "content": f"question number {n}"}],
                    "metadata": {"biorouter_task": "code_generation", "biorouter_strategy": "race"},
                }
                for n in range(6)
            ]
            return await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for body in bodies))

    responses = asyncio.run(ask_all())
    for n, response in enumerate(responses):
        assert f"question number {n}" in answer(response)


def session_totals(dev_stack: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    status = httpx.get(dev_stack.proxy.url + "/biorouter/status", headers=headers, timeout=10).json()
    return dict(status["session"])


def test_a_strategy_counts_once_in_the_session_not_once_per_inner_call(dev_stack: Any, clean_standins: Any) -> None:
    before = session_totals(dev_stack)["totals"]["requests"]
    answer(post(dev_stack, ASK, "code_validation"))  # an ensemble: two inner calls
    answer(post(dev_stack, ASK, "code_generation"))  # one single call, counted by LiteLLM's success callback
    deadline = time.monotonic() + 10
    while session_totals(dev_stack)["totals"]["requests"] < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_totals(dev_stack)["totals"]["requests"] == before + 2
