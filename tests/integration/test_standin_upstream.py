"""The OpenAI-compatible stand-in upstreams, exercised as real subprocesses over loopback HTTP."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network

import json
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from biorouter.testing import Fault, StandIn, StandInFleet, build_app, free_port

CODER = "t4-coder"
CLOUD = "cloud-gpt"
PROMPT = "write a function that reverses a DNA sequence"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInFleet]:
    with StandInFleet([CODER, CLOUD], log_dir=tmp_path_factory.mktemp("standin-logs")) as running:
        yield running


@pytest.fixture
def coder(fleet: StandInFleet) -> Iterator[StandIn]:
    """The t4-coder stand-in, healthy and with zeroed counters; faults are cleared afterwards too."""
    standin = fleet[CODER]
    standin.clear_fault()
    standin.reset()
    yield standin
    standin.clear_fault()


@pytest.fixture
def sdk(coder: StandIn) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=coder.api_base, api_key="x", max_retries=0, timeout=5) as client:
        yield client


def _post(standin: StandIn, path: str, body: Any) -> httpx.Response:
    return httpx.post(standin.url + path, json=body, timeout=10, trust_env=False)


def test_answer_names_the_deployment_and_echoes_the_model(coder: StandIn) -> None:
    resp = _post(coder, "/v1/chat/completions", {"model": "any-model", "messages": HELLO, "temperature": 0.2})
    assert resp.status_code == 200
    body = resp.json()
    content = body["choices"][0]["message"]["content"]
    assert content.startswith(f"[{CODER}] received 1 message;")
    assert "reverses a DNA sequence" in content
    assert body["model"] == "any-model"
    assert body["id"].startswith("chatcmpl-standin-")
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(PROMPT.split())
    assert usage["completion_tokens"] == len(content.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_each_stand_in_names_itself_and_tolerates_extra_fields(fleet: StandInFleet) -> None:
    extra = {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], "user": "u1"}
    for name in fleet.names:
        body = {"model": "m", "messages": HELLO, "max_tokens": 3, "metadata": {"k": "v"}, **extra}
        resp = _post(fleet[name], "/chat/completions", body)  # the path without /v1 works too
        assert resp.json()["choices"][0]["message"]["content"].startswith(f"[{name}]")


def test_long_user_turns_are_echoed_truncated(coder: StandIn) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "word " * 100}]
    content = _post(coder, "/v1/chat/completions", {"model": "m", "messages": messages}).json()
    text = content["choices"][0]["message"]["content"]
    assert "received 2 messages" in text
    assert len(text) < 150
    assert text.endswith("...'")


def test_streaming_through_the_openai_sdk_names_the_deployment(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="t4-coder", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content.startswith(f"[{CODER}] received 1 message")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == len(content.split())


def test_streaming_is_server_sent_events_ending_with_done(coder: StandIn) -> None:
    body = {"model": "m", "messages": HELLO, "stream": True}
    resp = _post(coder, "/v1/chat/completions", body)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = [e for e in resp.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)  # no usage chunk
    assert "usage" not in chunks[-1]


def test_embeddings_are_deterministic_unit_vectors(sdk: openai.OpenAI, coder: StandIn) -> None:
    # The SDK asks for base64 unless told otherwise; the stand-in honours both encodings.
    first = sdk.embeddings.create(model="embedder", input=["alpha helix", "beta sheet", "alpha helix"])
    vectors = [d.embedding for d in first.data]
    assert [len(v) for v in vectors] == [16, 16, 16]
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    assert first.usage.prompt_tokens == 6
    raw = _post(coder, "/v1/embeddings", {"model": "embedder", "input": "alpha helix"}).json()
    assert raw["data"][0]["embedding"] == pytest.approx(vectors[0], rel=1e-6)
    tokens = _post(coder, "/embeddings", {"model": "embedder", "input": [1, 2, 3]}).json()
    assert len(tokens["data"]) == 1


def test_stats_count_requests_and_reset_zeroes_them(coder: StandIn, sdk: openai.OpenAI) -> None:
    sdk.chat.completions.create(model="model-a", messages=HELLO)
    sdk.chat.completions.create(model="model-b", messages=HELLO)
    sdk.embeddings.create(model="model-e", input="x")
    stats = coder.stats()
    assert stats["name"] == CODER
    assert stats["requests"] == 3
    assert (stats["chat_requests"], stats["embedding_requests"], stats["errors_injected"]) == (2, 1, 0)
    assert stats["last_models"] == ["model-a", "model-b", "model-e"]
    coder.reset()
    assert coder.stats() == {**stats, "requests": 0, "chat_requests": 0, "embedding_requests": 0, "last_models": []}


def test_injected_server_error_is_openai_error_json_and_counted(coder: StandIn) -> None:
    assert coder.set_fault(error_rate=1.0, status=500)["error_rate"] == 1.0
    resp = _post(coder, "/v1/chat/completions", {"model": "m", "messages": HELLO})
    assert resp.status_code == 500
    assert resp.json() == {"error": {"message": f"standin {CODER} injected error", "type": "server_error", "code": 500}}
    assert _post(coder, "/v1/embeddings", {"model": "m", "input": "x"}).status_code == 500
    stats = coder.stats()
    assert (stats["requests"], stats["errors_injected"]) == (2, 2)
    assert httpx.get(coder.url + "/health", trust_env=False).status_code == 200  # health ignores errors


def test_injected_rate_limit_carries_retry_after(coder: StandIn, sdk: openai.OpenAI) -> None:
    coder.set_fault(error_rate=1.0, status=429)
    resp = _post(coder, "/v1/chat/completions", {"model": "m", "messages": HELLO})
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "0"
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="m", messages=HELLO)


def test_latency_delays_the_answer(coder: StandIn) -> None:
    coder.set_fault(latency_ms=250)
    started = time.monotonic()
    resp = _post(coder, "/v1/chat/completions", {"model": "m", "messages": HELLO})
    assert resp.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_down_drops_connections_but_health_answers_until_cleared(coder: StandIn, sdk: openai.OpenAI) -> None:
    coder.set_fault(down=True)
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(openai.APIConnectionError):
        sdk.embeddings.create(model="m", input="x")
    health = httpx.get(coder.url + "/health", trust_env=False)
    assert (health.status_code, health.json()["status"]) == (503, "down")
    assert coder.stats()["requests"] == 2
    coder.clear_fault()
    reply = sdk.chat.completions.create(model="m", messages=HELLO)
    assert (reply.choices[0].message.content or "").startswith(f"[{CODER}]")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"status": 200}, "status"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"down": "yes"}, "down"),
        ({"explode": True}, "explode"),
    ],
)
def test_invalid_fault_is_rejected_naming_the_field(coder: StandIn, fields: dict[str, Any], named: str) -> None:
    resp = _post(coder, "/admin/fault", fields)
    assert resp.status_code == 400
    assert named in resp.json()["error"]["message"]
    assert coder.get_fault() == Fault().model_dump()  # unchanged
    with pytest.raises(ValueError, match=named):
        coder.set_fault(**fields)


def test_fault_updates_are_partial_and_empty_update_heals(coder: StandIn) -> None:
    coder.set_fault(error_rate=0.5, status=503)
    assert coder.set_fault(latency_ms=10) == {
        "error_rate": 0.5,
        "status": 503,
        "latency_ms": 10,
        "down": False,
        "fail_next": 0,
    }
    assert _post(coder, "/admin/fault", {}).json() == Fault().model_dump()


async def test_litellm_acompletion_reaches_the_stand_in(coder: StandIn) -> None:
    import litellm

    reply = await litellm.acompletion(model=f"openai/{CODER}", api_base=coder.api_base, api_key="x", messages=HELLO)
    assert reply.choices[0].message.content.startswith(f"[{CODER}]")
    assert reply.usage.total_tokens > 0
    stream = await litellm.acompletion(
        model=f"openai/{CODER}", api_base=coder.api_base, api_key="x", messages=HELLO, stream=True
    )
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(parts).startswith(f"[{CODER}]")
    embedded = await litellm.aembedding(model="openai/embedder", api_base=coder.api_base, api_key="x", input="x")
    assert len(embedded.data[0]["embedding"]) == 16
    assert coder.stats()["last_models"] == [CODER, CODER, "embedder"]


async def test_litellm_sees_a_down_stand_in_like_a_dead_port(coder: StandIn) -> None:
    import litellm

    async def failure(api_base: str) -> Exception:
        with pytest.raises(Exception) as caught:  # noqa: PT011 -- the type is compared below
            await litellm.acompletion(
                model=f"openai/{CODER}", api_base=api_base, api_key="x", messages=HELLO, max_retries=0, timeout=5
            )
        return caught.value

    coder.set_fault(down=True)
    dropped = await failure(coder.api_base)
    refused = await failure(f"http://127.0.0.1:{free_port()}/v1")
    # Same failure as a dead port (a hang would surface as litellm.Timeout instead).
    # litellm 1.106.2 maps the openai SDK's APIConnectionError to InternalServerError("Connection error.")
    assert type(dropped) is type(refused)
    assert "Connection error" in str(dropped)


def test_start_on_a_taken_port_fails_naming_the_stand_in(fleet: StandInFleet) -> None:
    taken = fleet[CLOUD].port
    with pytest.raises(RuntimeError, match=rf"'intruder' on port {taken} exited") as failure:
        StandIn("intruder", port=taken).start(timeout=10)
    assert "in use" in str(failure.value)
    assert fleet[CLOUD].stats()["name"] == CLOUD  # the owner of the port is unaffected


def test_fleet_start_failure_stops_the_members_already_started(fleet: StandInFleet) -> None:
    healthy = StandIn("healthy")
    doomed = StandIn("doomed", port=fleet[CLOUD].port)
    with pytest.raises(RuntimeError, match="doomed"):
        StandInFleet([healthy, doomed]).start(timeout=10)
    assert not healthy.is_running()


def test_killed_stand_in_refuses_connections_and_restarts(tmp_path: Path) -> None:
    with StandIn("crashy", log_path=tmp_path / "crashy.log") as standin:
        standin.kill()
        assert not standin.is_running()
        with pytest.raises(httpx.ConnectError):
            standin.stats()
        standin.start()
        assert standin.stats()["requests"] == 0
    assert not standin.is_running()
    assert "standin crashy listening on http://127.0.0.1:" in (tmp_path / "crashy.log").read_text()


def test_started_down_stand_in_becomes_ready_and_reports_down() -> None:
    with StandIn("born-dead", fault=Fault(down=True)) as standin:
        assert standin.get_fault()["down"] is True
        with pytest.raises(httpx.TransportError):
            _post(standin, "/v1/chat/completions", {"model": "m", "messages": HELLO})


def test_command_line_rejects_an_invalid_fault() -> None:
    cmd = [sys.executable, "-m", "biorouter.testing.upstream", "--port", "0", "--name", "x", "--error-rate", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "error_rate" in done.stderr


@pytest.fixture
async def seeded_pair() -> AsyncIterator[list[str]]:
    """Two in-process stand-ins (build_app) with the same seed and a 50 % error rate."""
    runners, urls = [], []
    for name in ("seeded-a", "seeded-b"):
        runner = web.AppRunner(build_app(name, Fault(error_rate=0.5, status=503), seed=7))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for runner in runners:
        await runner.cleanup()


async def test_seeded_error_injection_is_reproducible(seeded_pair: list[str]) -> None:
    patterns = []
    async with httpx.AsyncClient(trust_env=False) as client:
        for url in seeded_pair:
            codes = [
                (await client.post(url + "/v1/embeddings", json={"model": "m", "input": "x"})).status_code
                for _ in range(20)
            ]
            patterns.append(codes)
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 503}
