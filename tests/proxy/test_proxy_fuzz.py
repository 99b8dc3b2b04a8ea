"""Fuzzing the real proxy: 2,000 generated chat bodies over HTTP, no 500 and no crash.

Hypothesis draws the bodies up front (derandomized: the same 2,000 every run; see
``tests/request_strategies.py``, JSON-safe variant), then they are sent 16 at a time through the
session's proxy with healthy stand-ins. Any body must get an answer or a 4xx -- a 5xx would be
biorouter's or LiteLLM's own failure, since no upstream fails here -- and the same proxy process
must still serve afterwards. The one 5xx allowed is biorouter's deliberate 503 for a local-only
request that no allowed group can take (a ``max_tokens`` no local window holds, an identifier
sent to the cloud group by name).
A request whose scanned text holds a sample or record identifier must never reach the cloud
stand-in (deepseek-v3): its canary counts every request carrying one.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from biorouter.errors import RequestError
from biorouter.governance.request_view import view_request

from ..request_strategies import request_bodies

pytestmark = pytest.mark.usefixtures("clean_standins")

EXAMPLES = 2_000
CONCURRENCY = 16
SENSITIVE = re.compile(r"\bSMP-\d{6}(?!\d)|MRN: 00482913")


def _generate(count: int) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=request_bodies(json_safe=True))
    def collect(body: dict[str, Any]) -> None:
        bodies.append(body)

    collect()
    return bodies


def _refused(status: int, text: str) -> bool:
    """biorouter's deliberate 503, decided before any call: a local-only request no allowed group can take.

    (Too long for every local window, or naming the cloud group with an identifier in it.) A 503
    after the call ("no local deployment could serve it") is not one: the stand-ins are healthy.
    """
    deliberate = '"message":"biorouter: ' in text and "no local deployment could serve it" not in text
    return status == 503 and deliberate


def _sensitive(body: dict[str, Any]) -> bool:
    try:
        texts = view_request(body["messages"]).texts
    except RequestError:
        return False
    return any(SENSITIVE.search(text) for text in texts)


async def _send_all(dev_stack: Any, bodies: list[dict[str, Any]]) -> list[tuple[int, str]]:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}", "Content-Type": "application/json"}
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=60, trust_env=False, limits=limits) as http:

        async def send(body: dict[str, Any]) -> tuple[int, str]:
            async with gate:
                response = await http.post(
                    dev_stack.proxy.url + "/v1/chat/completions", headers=headers, content=json.dumps(body)
                )
                return response.status_code, response.text[:300]

        return await asyncio.gather(*(send(body) for body in bodies))


@pytest.fixture
def cloud_canary(dev_stack: Any) -> Iterator[Any]:
    """The cloud stand-in counts every request carrying an identifier (``canary_hits``)."""
    cloud = dev_stack.fleet["deepseek-v3"]
    cloud.set_canary(SENSITIVE.pattern)
    yield cloud
    cloud.set_canary(None)


def test_generated_bodies_get_an_answer_or_a_4xx_and_the_proxy_survives(dev_stack: Any, cloud_canary: Any) -> None:
    bodies = _generate(EXAMPLES)
    assert len(bodies) >= EXAMPLES
    pid = dev_stack.proxy.pid
    results = asyncio.run(_send_all(dev_stack, bodies))
    statuses = collections.Counter(status for status, _ in results)
    failures = [
        (body, status, text)
        for body, (status, text) in zip(bodies, results, strict=True)
        if status >= 500 and not _refused(status, text)
    ]
    assert not failures, f"{len(failures)} bodies got a 5xx ({dict(statuses)}); first: {failures[0]}"
    # the generator reaches the upstreams, not only 400s (about a quarter are answered; the share moves a
    # little with what earlier tests left in the shared proxy, e.g. a spent budget)
    assert statuses[200] >= len(bodies) // 5, dict(statuses)
    # Error details are logged by LiteLLM: biorouter's messages name a field's kind, never echo its text.
    log = (dev_stack.run_dir / "proxy.log").read_text(encoding="utf-8", errors="replace")
    assert not SENSITIVE.search(log), "an identifier from a request body reached the proxy log"
    assert dev_stack.proxy.is_running()
    assert dev_stack.proxy.pid == pid
    sensitive = sum(_sensitive(body) for body in bodies)
    assert sensitive > 100  # identifiers were generated, so the canary count below proves something
    assert cloud_canary.stats()["canary_hits"] == 0
