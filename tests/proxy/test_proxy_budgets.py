"""Budgets end to end: two real ``litellm`` proxies sharing one real ``redis-server`` ledger.

The cloud stand-in (``deepseek-v3``) is given prices in this suite's config, so LiteLLM computes a
real ``response_cost`` for it from the usage the stand-in reports. A profile with a tiny daily
budget is added in a temporary home. The classifier embeds through the stand-in's deterministic
``/v1/embeddings`` (declared local) so the two proxies start in seconds; routes are chosen with
task hints, which is what these tests need to be certain of.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.costs.ledger_redis import RedisLedger
from biorouter.testing.devstack import ProxyProcess
from biorouter.testing.redis import RedisServer

from .conftest import budgeted_home, priced_stand_in_config

CLOUD = "deepseek-v3"
MAX_TOKENS = 100  # estimate ≈ $0.0002 prompt + 100 × $0.00002 = about $0.0022 per cloud request
DAILY_BUDGET = 0.003  # a few cloud requests at about $0.00035 each, with a $0.0022 estimate held
PROFILE = "budgeted"

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="redis-server is not installed (make redis)")


@pytest.fixture(scope="module")
def home(dev_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """biorouter.yaml with the stand-in encoder, the shipped profiles, and one with a tiny budget."""
    folder = tmp_path_factory.mktemp("budget-home")
    return budgeted_home(folder, dev_stack, profile=PROFILE, daily_budget_usd=DAILY_BUDGET)


@pytest.fixture(scope="module")
def proxies(
    dev_stack: Any, home: Path, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ProxyProcess]]:
    run_dir = tmp_path_factory.mktemp("budget-proxies")
    path = priced_stand_in_config(dev_stack, run_dir / "priced.yaml", CLOUD)
    env = {"BIOROUTER_HOME": str(home), "BIOROUTER_PROFILE": PROFILE, "REDIS_URL": redis.url}
    started = [ProxyProcess(path, env=env, log_path=run_dir / f"proxy-{n}.log") for n in "ab"]
    try:
        for proxy in started:
            proxy.start()
        yield started
    finally:
        for proxy in started:
            proxy.stop()


def ask(proxy: ProxyProcess, task: str = "orchestration", model: str = "auto", **extra: Any) -> httpx.Response:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "coordinate the agents for the nightly run"}],  # not local-only
        "max_tokens": MAX_TOKENS,
        "metadata": {"biorouter_task": task},
        **extra,
    }
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    return httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def spend_today(redis: RedisServer) -> tuple[float, int]:
    async def read() -> tuple[float, int]:
        ledger = RedisLedger(redis.url)
        try:
            rows = await ledger.report(datetime.now(UTC).date())
        finally:
            await ledger.aclose()
        total = [row for row in rows if row.dimension == "total"]
        return sum(r.cost_usd for r in total), sum(r.requests for r in total)

    return asyncio.run(read())


def wait_for_requests(redis: RedisServer, count: int, timeout: float = 15) -> tuple[float, int]:
    """Spend is settled by LiteLLM's success callback, just after the response: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        cost, requests = spend_today(redis)
        if requests >= count or time.monotonic() > deadline:
            return cost, requests
        time.sleep(0.2)


def test_spend_through_either_proxy_is_shared_and_a_budget_spent_on_one_downgrades_the_other(
    proxies: list[ProxyProcess], redis: RedisServer, clean_standins: Any
) -> None:
    a, b = proxies
    groups = []
    for number in range(12):
        response = ask(a if number % 2 == 0 else b)
        assert response.status_code == 200, response.text
        groups.append(response.headers["x-biorouter-group"])
        wait_for_requests(redis, number + 1)
    assert groups[0] == CLOUD  # orchestration goes to the cloud first
    assert "t4-generalist" in groups  # ... until the shared daily budget cannot take another estimate
    first_local = groups.index("t4-generalist")
    assert set(groups[first_local:]) == {"t4-generalist"}  # and it stays downgraded, through both proxies
    cost, requests = wait_for_requests(redis, 12)
    assert requests == 12
    assert 0 < cost <= DAILY_BUDGET
    assert clean_standins[CLOUD].stats()["chat_requests"] == first_local
    warning = ask(b).headers.get("x-biorouter-budget", "")
    assert warning.startswith(f"daily budget of profile:{PROFILE} ($0.003): ")
    assert warning.endswith("% used")
    # the log says so once per proxy when the budget crosses warn_at, not on every request after it (issue 20)
    logged = [p.log_tail(500_000).count(f"biorouter budget: daily budget of profile:{PROFILE}") for p in proxies]
    assert logged[1] == 1
    assert logged[0] <= 1


def test_a_request_naming_the_cloud_group_over_budget_is_refused_with_the_reason(
    proxies: list[ProxyProcess], clean_standins: Any
) -> None:
    before = session_totals(proxies[1])
    response = ask(proxies[1], model=CLOUD)
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert f"'{CLOUD}' refused: cloud spend is off: daily budget of profile:{PROFILE}" in message
    assert clean_standins[CLOUD].stats()["requests"] == 0
    after = session_totals(proxies[1])  # the session counts it as a request and an error (issue 20)
    assert (after["requests"], after["errors"]) == (before["requests"] + 1, before["errors"] + 1)


def session_totals(proxy: ProxyProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    totals: dict[str, Any] = httpx.get(proxy.url + "/biorouter/status", headers=headers, timeout=30).json()["session"][
        "totals"
    ]
    return totals


def test_local_groups_keep_serving_when_every_budget_is_spent(proxies: list[ProxyProcess], clean_standins: Any) -> None:
    response = ask(proxies[0], task="code_generation")
    assert response.status_code == 200
    assert response.headers["x-biorouter-group"] == "t4-coder"


def test_a_request_estimated_over_max_per_request_goes_local_or_is_refused(
    proxies: list[ProxyProcess], clean_standins: Any
) -> None:
    huge = ask(proxies[0], task="documentation", max_tokens=10_000)  # estimate ≈ $0.2 > $0.01
    assert huge.status_code == 200
    assert huge.headers["x-biorouter-group"] == "t4-generalist"
    named = ask(proxies[0], model=CLOUD, max_tokens=10_000)
    assert named.status_code == 503
    assert "refused" in named.json()["error"]["message"]
    assert clean_standins[CLOUD].stats()["requests"] == 0


def test_redis_down_keeps_serving_locally_and_reconciles_when_it_returns(
    proxies: list[ProxyProcess], redis: RedisServer, clean_standins: Any
) -> None:
    _, before = wait_for_requests(redis, 0, timeout=0)
    redis.kill()
    try:
        for proxy in proxies:
            response = ask(proxy, task="code_generation")
            assert response.status_code == 200, response.text
            assert response.headers["x-biorouter-group"] == "t4-coder"
    finally:
        redis.start()
    time.sleep(2.5)  # the ledgers try Redis again after their retry interval
    for proxy in proxies:
        assert ask(proxy, task="code_generation").status_code == 200
    _, after = wait_for_requests(redis, before + 4)
    assert after == before + 4  # the two requests counted during the outage reached Redis too
    assert clean_standins[CLOUD].stats()["requests"] == 0
    assert any("unreachable" in proxy.log_tail(200_000) for proxy in proxies)
