"""Malformed and unusual chat requests through the real proxy: a normal answer or a clear 4xx, never a 500.

Each case is sent as raw bytes or JSON with httpx (the OpenAI SDK refuses to send most of these),
so what the proxy receives is exactly what a careless or hostile client would send. A 4xx must
name the problem; an answer must come from a stand-in. After the whole matrix the same proxy
process is alive and still routes a normal request.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.usefixtures("clean_standins")

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "run_blast", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "run_blast", "arguments": '{"query": "ACGTTGCA"}'}}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def auto(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", **fields}


# name -> (body, expected): expected is "answer" (HTTP 200 from a stand-in) or (4xx status, words the
# error message must contain). A body given as bytes is sent as is.
CASES: dict[str, tuple[Any, Any]] = {
    "messages missing": (auto(), (400, "no 'messages'")),
    "messages empty": (auto(messages=[]), (400, "'messages' is empty")),
    "messages a string": (auto(messages="hello"), (400, "'messages' must be a list")),
    "messages an object": (auto(messages={"role": "user", "content": "hi"}), (400, "'messages' must be a list")),
    "message not an object": (auto(messages=["hello"]), (400, "messages[0] must be an object")),
    "message without role": (auto(messages=[{"content": "what is a p-value?"}]), (400, "messages[0] needs a 'role'")),
    "role not a string": (auto(messages=[{"role": ["user"], "content": "hi"}]), (400, "needs a 'role'")),
    "message with unknown role": (auto(messages=[{"role": "wizard", "content": "hi"}]), "answer"),
    "content a number": (auto(messages=[{"role": "user", "content": 42}]), (400, "messages[0]: message content")),
    "content an object": (
        auto(messages=[{"role": "user", "content": {"text": "hi"}}]),
        (400, "messages[0]: message content must be a string or a list of content parts, not dict"),
    ),
    "content null": (auto(messages=[{"role": "user", "content": None}]), (400, "has no 'content'")),
    "content missing": (auto(messages=[{"role": "user"}]), (400, "messages[0] (role 'user') has no 'content'")),
    "content part without a type": (
        auto(messages=[{"role": "user", "content": [{"text": "hi"}]}]),
        (400, "messages[0].content[0] must be a content part object with a 'type'"),
    ),
    "image and text parts": (
        auto(messages=[{"role": "user", "content": [{"type": "text", "text": "what does this gel show?"}, IMAGE]}]),
        "answer",
    ),
    "image part only": (auto(messages=[{"role": "user", "content": [IMAGE]}]), "answer"),
    "tools in the request": (auto(messages=user("blast this read against nt"), tools=[TOOL]), "answer"),
    "assistant tool_calls with null content and a tool result": (
        auto(
            messages=[
                {"role": "user", "content": "blast this read"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "3 hits on chr7"},
            ],
            tools=[TOOL],
        ),
        "answer",
    ),
    "legacy function message": (
        auto(messages=[*user("run it"), {"role": "function", "name": "run_blast", "content": "done"}]),
        "answer",
    ),
    "tool_calls not a list": (
        auto(messages=[*user("hi"), {"role": "assistant", "content": None, "tool_calls": True}]),
        (400, "messages[1].tool_calls must be a list"),
    ),
    "tools not a list of objects": (auto(messages=user("hi"), tools=[3]), (400, "'tools' must be a list")),
    "1 MB prompt": (auto(messages=user("a " * 500_000)), (400, "shorten the prompt")),
    "1 MB prompt with a sample id": (auto(messages=user("SMP-004217 " + "a " * 500_000)), (400, "shorten the prompt")),
    "unknown task hint": (auto(messages=user("hi"), metadata={"biorouter_task": "astrology"}), (400, "astrology")),
    "task hint a number": (auto(messages=user("hi"), metadata={"biorouter_task": 5}), (400, "biorouter_task")),
    "task hint empty": (auto(messages=user("hi"), metadata={"biorouter_task": ""}), (400, "biorouter_task")),
    # LiteLLM replaces a metadata that is not an object with its own before the hook; in-process it is a 400.
    "metadata a string": (auto(messages=user("hi"), metadata="x"), "answer"),
    "max_tokens negative": (auto(messages=user("hi"), max_tokens=-1), (400, "max_tokens must be a non-negative")),
    "max_tokens a string": (auto(messages=user("hi"), max_tokens="ten"), (400, "max_tokens")),
    "max_completion_tokens a float": (auto(messages=user("hi"), max_completion_tokens=1.5), (400, "max_completion")),
    "model missing": ({"messages": user("what is a p-value?")}, "answer"),
    "model null": ({"model": None, "messages": user("hi")}, "answer"),
    "model a number": ({"model": 5, "messages": user("hi")}, (400, "'model' must be a string")),
    "unknown model": ({"model": "gpt-9", "messages": user("hi")}, (400, "unknown model 'gpt-9'")),
    "stream with bad content": (
        auto(stream=True, messages=[{"role": "user", "content": 42}]),
        (400, "message content must be"),
    ),
    "stream with tool turns": (
        auto(stream=True, messages=[*user("blast"), {"role": "assistant", "content": None, "tool_calls": [CALL]}]),
        "answer",
    ),
    "lone surrogate in JSON": (
        b'{"model": "auto", "messages": [{"role": "user", "content": "MRN \\ud800 here"}]}',
        (400, "surrogate"),
    ),
    "invalid UTF-8 bytes": (
        b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        (400, "UTF-8"),
    ),
    "truncated JSON": (b'{"model": "auto", "messages": [', (400, "Invalid JSON")),
    "empty body": (b"", (400, "no 'messages'")),
    # LiteLLM's auth step reads these before any hook; biorouter.proxy.body_shape turns them into a 400.
    "body a JSON array": (b"[1, 2]", (400, "the request body must be a JSON object, not list")),
    "body a JSON number": (b"42", (400, "the request body must be a JSON object, not int")),
    "body a JSON string": (b'"hello"', (400, "must be a JSON object, not str")),
    "body null": (b"null", (400, "must be a JSON object, not NoneType")),
    "tools a number": (auto(messages=user("hi"), tools=3), (400, "'tools' must be a list of tool objects")),
}


def _send(dev_stack: Any, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(timeout=120, trust_env=False) as http:
        return http.post(dev_stack.proxy.url + "/v1/chat/completions", headers=headers, content=content)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message") if isinstance(error, dict) else body)


@pytest.fixture(scope="module")
def proxy_pid(dev_stack: Any) -> int:
    """The proxy's pid before the matrix; the test module ends by checking the same process still serves."""
    pid: int = dev_stack.proxy.pid
    return pid


@pytest.mark.parametrize(("body", "expected"), CASES.values(), ids=CASES.keys())
def test_bad_request_gets_an_answer_or_a_clear_4xx(dev_stack: Any, proxy_pid: int, body: Any, expected: Any) -> None:
    response = _send(dev_stack, body)
    if expected == "answer":
        assert response.status_code == 200, _error_message(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            assert "[DONE]" in response.text
        else:
            assert response.json()["choices"][0]["message"]["content"].startswith("[t4-")
        assert response.headers["x-biorouter-group"]
        return
    status, words = expected
    message = _error_message(response)
    assert response.status_code == status, message
    assert words in message


def test_the_same_proxy_process_is_alive_and_routes_after_the_matrix(dev_stack: Any, proxy_pid: int) -> None:
    assert dev_stack.proxy.is_running()
    assert dev_stack.proxy.pid == proxy_pid
    response = _send(dev_stack, auto(messages=user("write a python function that parses a FASTA file")))
    assert response.status_code == 200
    assert response.headers["x-biorouter-group"] == "t4-coder"
    live = httpx.get(dev_stack.proxy.url + "/health/liveliness", timeout=10, trust_env=False)
    assert live.status_code == 200
