"""OpenAI-compatible stand-in upstream for tests and demos -- NOT a model.

No real model runs on the machines where biorouter is developed and tested, so this module
serves a small, deterministic imitation of the OpenAI wire format that the vLLM servers and
cloud APIs speak: ``/v1/chat/completions`` (streaming included), ``/v1/embeddings`` and
``/v1/models``.  Answers merely echo the request and name the deployment (``[NAME] ...``), so a
test can tell which upstream LiteLLM routed a call to (``/admin/answer`` sets a fixed answer
instead, for tests of votes and answer checks).  Faults (errors, latency, a dead server)
can be injected from the command line or at run time via ``/admin/fault``; ``/stats`` counts
what arrived, including ``canary_hits``: requests carrying text that matches the ``/admin/canary``
regex, i.e. data that must never reach this upstream (governance checks from the outside).
Run it with ``python -m biorouter.testing.upstream --port P --name NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import struct
import sys
import time
from collections import deque
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

EMBEDDING_DIM = 16
_ECHO_CHARS = 80

JsonDict = dict[str, Any]


class Fault(BaseModel):
    """Faults injected into the API paths (chat and embeddings); all-default means healthy."""

    model_config = ConfigDict(extra="forbid", strict=True)

    error_rate: float = Field(default=0.0, ge=0, le=1)
    status: int = Field(default=500, ge=400, le=599)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    down: bool = False
    fail_next: int = Field(default=0, ge=0, le=1_000_000, description="the next N API calls fail with `status`")


class CannedAnswer(BaseModel):
    """A fixed chat answer instead of the echo (``/admin/answer``), for tests of votes and answer checks."""

    model_config = ConfigDict(extra="forbid", strict=True)

    content: str | None = Field(default=None, max_length=100_000, description="None: echo the request as usual")


class _State:
    def __init__(self, name: str, fault: Fault, seed: int | None) -> None:
        self.name = name
        self.fault = fault
        self.rng = random.Random(seed)
        self.serial = 0
        self.canary: re.Pattern[str] | None = None  # see _count_canary; kept across /admin/reset
        self.reset()

    def reset(self) -> None:
        self.answer = CannedAnswer()  # /admin/reset echoes again, as a fresh stand-in does
        self.requests = 0
        self.chat_requests = 0
        self.embedding_requests = 0
        self.errors_injected = 0
        self.canary_hits = 0
        self.last_models: deque[str] = deque(maxlen=20)

    def stats(self) -> JsonDict:
        counters = ("requests", "chat_requests", "embedding_requests", "errors_injected", "canary_hits")
        return {
            "name": self.name,
            **{c: getattr(self, c) for c in counters},
            "last_models": [*self.last_models],
        }


STATE = web.AppKey("standin_state", _State)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)


def _words(text: str) -> int:
    return len(text.split())


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string, a list of parts, or null (tool calls)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _vector(text: str) -> list[float]:
    """Deterministic unit-norm vector of EMBEDDING_DIM floats derived from a hash of ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()  # 32 bytes = 16 x uint16
    raw = [v / 32767.5 - 1.0 for v in struct.unpack(f"<{EMBEDDING_DIM}H", digest)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


async def _read_json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def _admit(request: web.Request, chat: bool) -> tuple[Any, web.StreamResponse | None]:
    """Count an API request, then apply the current fault; a response here must be returned as is."""
    state = request.app[STATE]
    body = await _read_json(request)
    state.requests += 1
    _count_canary(state, body)
    if chat:
        state.chat_requests += 1
    else:
        state.embedding_requests += 1
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str):
        state.last_models.append(model)
    fault = state.fault
    if fault.down:
        return body, _drop_connection(request)
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    failing_now = fault.fail_next > 0
    if failing_now:
        state.fault = fault.model_copy(update={"fail_next": fault.fail_next - 1})
    if failing_now or (fault.error_rate and state.rng.random() < fault.error_rate):
        state.errors_injected += 1
        resp = _error(fault.status, f"standin {state.name} injected error", "server_error")
        if fault.status == 429:
            resp.headers["retry-after"] = "0"
        return body, resp
    if not isinstance(body, dict) or not isinstance(model, str) or not model:
        return body, _error(400, "request body must be a JSON object with a string 'model'")
    return body, None


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the socket without any HTTP response, like a crashed server.

    aiohttp then fails to write the returned response (the transport is closing), treats it as
    a client disconnection and writes nothing; the client sees the connection closed.
    """
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)


async def _chat(request: web.Request) -> web.StreamResponse:
    body, early = await _admit(request, chat=True)
    if early is not None:
        return early
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "'messages' must be a non-empty list of objects")
    state = request.app[STATE]
    last_user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    echo = " ".join(last_user.split())
    if len(echo) > _ECHO_CHARS:
        echo = echo[: _ECHO_CHARS - 3] + "..."
    plural = "" if len(messages) == 1 else "s"
    answer = f"[{state.name}] received {len(messages)} message{plural}; last user turn: '{echo}'"
    if state.answer.content is not None:
        answer = state.answer.content
    prompt = max(1, sum(_words(_text_of(m.get("content"))) for m in messages))
    completion = _words(answer)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    state.serial += 1
    head = {"id": f"chatcmpl-standin-{state.serial}", "created": int(time.time()), "model": body["model"]}
    if body.get("stream") is True:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await _stream(request, head, answer, usage if include_usage else None)
    message = {"role": "assistant", "content": answer}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return web.json_response({**head, "object": "chat.completion", "choices": [choice], "usage": usage})


async def _stream(request: web.Request, head: JsonDict, answer: str, usage: JsonDict | None) -> web.StreamResponse:
    """Send ``answer`` as server-sent chat.completion.chunk events, as OpenAI does."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)

    async def send(choices: list[JsonDict], **extra: Any) -> None:
        chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
        if usage is not None and "usage" not in extra:
            chunk["usage"] = None
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

    def choice(delta: JsonDict, finish: str | None = None) -> JsonDict:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    await send([choice({"role": "assistant", "content": ""})])
    words = answer.split(" ")
    step = max(1, math.ceil(len(words) / 4))
    for i in range(0, len(words), step):
        piece = " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
        await send([choice({"content": piece})])
    await send([choice({}, "stop")])
    if usage is not None:
        await send([], usage=usage)
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def _embeddings(request: web.Request) -> web.StreamResponse:
    body, early = await _admit(request, chat=False)
    if early is not None:
        return early
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]  # one string, or one list of token ids
    if not isinstance(raw, list) or not raw:
        return _error(400, "'input' must be a string, a list of strings or a list of token lists")
    texts = [" ".join(map(str, i)) if isinstance(i, list) else str(i) for i in raw]
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vec = _vector(text)
        value: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if as_base64 else vec
        data.append({"object": "embedding", "index": index, "embedding": value})
    tokens = max(1, sum(_words(t) for t in texts))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage})


async def _models(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.fault.down:
        return _drop_connection(request)
    model = {"id": state.name, "object": "model", "created": 0, "owned_by": "standin"}
    return web.json_response({"object": "list", "data": [model]})


async def _health(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    status = "down" if state.fault.down else "ok"
    body = {"status": status, "name": state.name, "pid": os.getpid()}
    return web.json_response(body, status=503 if state.fault.down else 200)


async def _stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE].stats())


async def _reset(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.reset()
    return web.json_response(state.stats())


async def _get_fault(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE].fault.model_dump())


async def _clear_fault(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.fault = Fault()
    return web.json_response(state.fault.model_dump())


def _describe(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'fault'}: {e['msg']}" for e in exc.errors()]
    return "invalid fault: " + "; ".join(problems)


async def _set_fault(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        return _error(400, "fault must be a JSON object with any of: error_rate, status, latency_ms, down, fail_next")
    try:
        fault = Fault.model_validate({**state.fault.model_dump(), **body}) if body else Fault()
    except ValidationError as exc:
        return _error(400, _describe(exc))
    state.fault = fault
    return web.json_response(fault.model_dump())


async def _answer(request: web.Request) -> web.StreamResponse:
    """GET: the canned answer; POST ``{"content": "..."}`` sets it, ``{}`` or ``{"content": null}`` echoes again."""
    state = request.app[STATE]
    if request.method == "POST":
        body = await _read_json(request) if request.can_read_body else {}
        try:
            state.answer = CannedAnswer.model_validate(body or {})
        except ValidationError as exc:
            return _error(400, _describe(exc).replace("invalid fault", "invalid answer"))
    return web.json_response(state.answer.model_dump())


# -- governance canary ---------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    """Every string in a parsed JSON body (keys too), however deep."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _count_canary(state: _State, body: Any) -> None:
    """Count a request carrying text the canary regex matches: data that must never reach this upstream.

    A cloud stand-in given the sensitivity patterns as its canary proves governance from the
    outside: ``canary_hits`` stays 0 when no sensitive request reached it, whatever failed on the
    way. Matched on each parsed string, not the raw bytes, so JSON escaping cannot hide a hit. It
    counts on arrival, before any fault: a down or failing upstream still received the data.
    """
    if state.canary is not None and any(state.canary.search(text) for text in _strings(body)):
        state.canary_hits += 1


async def _canary(request: web.Request) -> web.StreamResponse:
    """GET: the canary regex; POST ``{"regex": "..."}`` sets it, ``{"regex": null}`` switches it off."""
    state = request.app[STATE]
    if request.method == "POST":
        body = await _read_json(request) if request.can_read_body else {}
        regex = body.get("regex") if isinstance(body, dict) else None
        if regex is not None and not isinstance(regex, str):
            return _error(400, 'canary must be a JSON object {"regex": string or null}')
        try:
            state.canary = re.compile(regex) if regex else None
        except re.error as exc:
            return _error(400, f"invalid canary regex: {exc}")
    return web.json_response({"regex": state.canary.pattern if state.canary else None, "hits": state.canary_hits})


def build_app(
    name: str, fault: Fault | None = None, seed: int | None = None, canary: str | None = None
) -> web.Application:
    """The stand-in as an aiohttp application (for in-process use or ``web.run_app``)."""
    app = web.Application(client_max_size=64 * 1024**2)
    app[STATE] = _State(name, fault or Fault(), seed)
    app[STATE].canary = re.compile(canary) if canary else None
    for prefix in ("/v1", ""):  # OpenAI paths, with and without the /v1 prefix
        app.add_routes([web.post(f"{prefix}/chat/completions", _chat), web.get(f"{prefix}/models", _models)])
        app.add_routes([web.post(f"{prefix}/embeddings", _embeddings)])
    app.add_routes([web.get("/health", _health), web.get("/stats", _stats), web.post("/admin/reset", _reset)])
    app.add_routes([web.get("/admin/fault", _get_fault), web.post("/admin/fault", _set_fault)])
    app.add_routes([web.post("/admin/fault/clear", _clear_fault)])
    app.add_routes([web.get("/admin/canary", _canary), web.post("/admin/canary", _canary)])
    app.add_routes([web.get("/admin/answer", _answer), web.post("/admin/answer", _answer)])
    return app


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Fault]:
    parser = argparse.ArgumentParser(
        prog="python -m biorouter.testing.upstream",
        description="OpenAI-compatible stand-in upstream for tests and demos (not a model).",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--name", required=True, help="deployment name echoed in every answer")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=500, help="HTTP status of injected errors")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--down", action="store_true", help="drop API connections without answering")
    parser.add_argument("--seed", type=int, default=None, help="seed of the error-injection RNG")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    parser.add_argument("--canary", default=None, help="count API requests with a string matching REGEX (canary_hits)")
    args = parser.parse_args(argv)
    try:
        fault = Fault(error_rate=args.error_rate, status=args.status, latency_ms=args.latency_ms, down=args.down)
    except ValidationError as exc:
        parser.error(_describe(exc))
    return args, fault


async def _serve(args: argparse.Namespace, fault: Fault) -> int:
    host = args.host or "127.0.0.1"  # loopback unless a host is asked for explicitly
    app = build_app(args.name, fault, args.seed, args.canary)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if args.access_log else None)
    await runner.setup()
    site = web.TCPSite(runner, host, args.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"standin {args.name}: cannot listen on {host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    port = args.port
    for address in runner.addresses:
        if isinstance(address, tuple):
            port = address[1]
    print(f"standin {args.name} listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    args, fault = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_serve(args, fault))


if __name__ == "__main__":
    sys.exit(main())
