"""Which group answered, and what the session counts, when things do not go as decided (issue 20).

When LiteLLM takes an allowed fallback, ``x-biorouter-group`` still names the decided group; the
client learns which group answered from ``x-biorouter-served-group``. Requests the proxy refuses
before any call (400 for a bad request) count in the session as requests and errors.
"""

from __future__ import annotations

from typing import Any

import httpx

CODE = "write a python function that parses a FASTA file into a dict"


def post(dev_stack: Any, body: dict[str, Any], path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    return httpx.post(dev_stack.proxy.url + path, json=body, headers=headers, timeout=120)


def totals(dev_stack: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    status = httpx.get(dev_stack.proxy.url + "/biorouter/status", headers=headers, timeout=30).json()
    result: dict[str, Any] = status["session"]["totals"]
    return result


def test_the_group_that_served_is_named_when_a_fallback_answers(dev_stack: Any, clean_standins: Any) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": CODE}]}
    first = post(dev_stack, body)
    assert first.status_code == 200
    assert first.headers["x-biorouter-served-group"] == first.headers["x-biorouter-group"] == "t4-coder"
    assert first.json()["model"] == "auto"  # what the client sent, as README says

    clean_standins["t4-coder"].set_fault(error_rate=1.0, status=500)
    fallen = post(dev_stack, body)
    assert fallen.status_code == 200
    assert fallen.headers["x-biorouter-group"] == "t4-coder"  # the decision
    assert fallen.headers["x-biorouter-served-group"] == "t4-generalist"  # who answered
    assert fallen.json()["model"] == "t4-generalist"  # LiteLLM names the fallback group in the body


def test_the_served_group_header_is_sent_with_a_stream_too(dev_stack: Any, clean_standins: Any) -> None:
    clean_standins["t4-coder"].set_fault(error_rate=1.0, status=500)
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": CODE}]}
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    url = dev_stack.proxy.url + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["x-biorouter-served-group"] == "t4-generalist"
        assert any(line.startswith("data:") for line in response.iter_lines())


def test_a_bad_request_counts_in_the_session_as_a_request_and_an_error(dev_stack: Any) -> None:
    before = totals(dev_stack)
    response = post(dev_stack, {"model": "auto", "messages": [{"role": "user", "content": CODE}], "max_tokens": -1})
    assert response.status_code == 400
    after = totals(dev_stack)
    assert after["requests"] == before["requests"] + 1
    assert after["errors"] == before["errors"] + 1
