"""Two proxy workers acting as one proxy: a real ``litellm --num_workers 2`` through biorouter's launcher.

One worker stack serves every test here: the launcher (``python -m biorouter.workers.launch``, what
``biorouter serve`` runs) over the session's stand-ins, a real ``redis-server`` for the shared
ledger, a profile with a tiny daily cloud budget, and the stand-in's deterministic embeddings as
the encoder so both workers start in seconds. Requests land on whichever worker the kernel hands
the connection to; ``/biorouter/status`` lists each worker's pid, generation and request count.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.testing.devstack import ProxyProcess
from biorouter.testing.redis import RedisServer

from .conftest import budgeted_home, priced_stand_in_config

CLOUD = "deepseek-v3"
DAILY_BUDGET = 0.003  # a few cloud requests at about $0.00035 each, with a $0.0022 estimate held
PROFILE = "budgeted"

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="redis-server is not installed (make redis)")


@pytest.fixture(scope="module")
def home(dev_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """biorouter.yaml with the stand-in encoder, the shipped profiles, and one with a tiny budget."""
    folder = tmp_path_factory.mktemp("workers-home")
    return budgeted_home(folder, dev_stack, profile=PROFILE, daily_budget_usd=DAILY_BUDGET)


@pytest.fixture(scope="module")
def priced_config(dev_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return priced_stand_in_config(dev_stack, tmp_path_factory.mktemp("workers-config") / "priced.yaml", CLOUD)


@pytest.fixture(scope="module")
def workers(
    home: Path, priced_config: Path, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """The worker stack: two workers, one shared ledger, one shared control folder."""
    run_dir = tmp_path_factory.mktemp("workers")
    env = {
        "BIOROUTER_HOME": str(home),
        "BIOROUTER_PROFILE": PROFILE,
        "REDIS_URL": redis.url,
        "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl"),
    }
    proxy = ProxyProcess(priced_config, env=env, log_path=run_dir / "proxy.log", workers=2)
    proxy.start()
    yield proxy
    proxy.stop()


def _headers(proxy: ProxyProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {proxy.master_key}"}


def ask(proxy: ProxyProcess, task: str, content: str = "coordinate the agents for the nightly run") -> httpx.Response:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 100,
        "metadata": {"biorouter_task": task},
    }
    return httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=_headers(proxy), timeout=60)


def status(proxy: ProxyProcess) -> dict[str, Any]:
    response = httpx.get(proxy.url + "/biorouter/status", headers=_headers(proxy), timeout=30)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def eventually(check: Callable[[dict[str, Any]], bool], proxy: ProxyProcess, timeout: float = 15) -> dict[str, Any]:
    """The status once ``check`` holds (workers report within half a second); the last one otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        payload = status(proxy)
        if check(payload) or time.monotonic() > deadline:
            return payload
        time.sleep(0.3)


def test_a_worker_count_without_a_shared_ledger_refuses_to_start(
    priced_config: Path, home: Path, tmp_path: Path
) -> None:
    env = {"BIOROUTER_HOME": str(home), "BIOROUTER_PROFILE": PROFILE, "REDIS_URL": ""}
    proxy = ProxyProcess(priced_config, env=env, log_path=tmp_path / "proxy.log", workers=2)
    with pytest.raises(RuntimeError, match="exited during start-up") as failure:
        proxy.start(timeout=60)
    assert "2 proxy workers" in str(failure.value)
    assert "ledger.redis_url" in str(failure.value)
    assert "REDIS_URL" in str(failure.value)


def test_both_workers_serve_and_status_sums_their_requests(workers: ProxyProcess, clean_standins: Any) -> None:
    before = status(workers)["session"]["totals"]["requests"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda n: ask(workers, "code_generation", f"write a parser {n}"), range(48)))
    assert [r.status_code for r in responses] == [200] * 48
    expected = before + 48
    payload = eventually(lambda p: sum(w["requests"] for w in p["workers"]) == expected, workers)
    listed = payload["workers"]
    assert len(listed) == 2
    assert all(worker["requests"] > 0 for worker in listed), listed  # both took a share
    assert sum(worker["requests"] for worker in listed) == expected
    assert payload["session"]["totals"]["requests"] == expected
    assert payload["session"]["by_group"]["t4-coder"]["requests"] >= 48
    assert clean_standins["t4-coder"].stats()["chat_requests"] == 48


def test_metrics_are_summed_over_both_workers_whichever_answers(workers: ProxyProcess) -> None:
    def decisions() -> float:
        text = httpx.get(workers.url + "/biorouter/metrics", headers=_headers(workers), timeout=30).text
        return sum(float(m) for m in re.findall(r"^biorouter_decisions_total\{.*\} ([0-9.e+]+)$", text, re.M))

    served = status(workers)["session"]["totals"]["requests"]
    seen = {decisions() for _ in range(6)}  # several connections: both workers answer some
    assert seen == {float(served)}


def test_a_daily_budget_holds_across_both_workers(
    workers: ProxyProcess, redis: RedisServer, clean_standins: Any
) -> None:
    groups = []
    for _ in range(12):
        response = ask(workers, "orchestration")
        assert response.status_code == 200, response.text
        groups.append(response.headers["x-biorouter-group"])
        time.sleep(0.3)  # spend is settled by the success callback, just after the response
    assert groups[0] == CLOUD
    first_local = groups.index("t4-generalist")
    assert set(groups[first_local:]) == {"t4-generalist"}  # one budget for the proxy, not one per worker
    assert clean_standins[CLOUD].stats()["chat_requests"] == first_local
    assert first_local <= 8  # $0.003 at about $0.00035 a request; two per-worker budgets would allow twice that


def test_a_reload_reaches_both_workers(workers: ProxyProcess) -> None:
    response = httpx.post(
        workers.url + "/biorouter/reload", json={"reason": "test"}, headers=_headers(workers), timeout=60
    )
    assert response.status_code == 200, response.text
    generation = response.json()["generation"]
    payload = eventually(lambda p: {w["generation"] for w in p["workers"]} == {generation}, workers)
    assert {w["generation"] for w in payload["workers"]} == {generation}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: ask(workers, "code_generation", f"write a loop {n}"), range(16)))
    assert {a.headers["x-biorouter-generation"] for a in answers} == {str(generation)}


def test_sighup_to_the_launcher_reloads_every_worker_without_restarting_them(workers: ProxyProcess) -> None:
    before = status(workers)["workers"]
    os.kill(workers.pid, signal.SIGHUP)
    target = before[0]["generation"] + 1
    payload = eventually(lambda p: {w["generation"] for w in p["workers"]} == {target}, workers)
    assert {w["generation"] for w in payload["workers"]} == {target}
    assert {w["pid"] for w in payload["workers"]} == {w["pid"] for w in before}  # reloaded in place


def test_a_profile_switch_reaches_both_workers(workers: ProxyProcess) -> None:
    body = {"profile": "development", "reason": "test the switch"}
    response = httpx.post(workers.url + "/biorouter/profile", json=body, headers=_headers(workers), timeout=60)
    assert response.status_code == 200, response.text
    try:
        payload = eventually(lambda p: {w["profile"] for w in p["workers"]} == {"development"}, workers)
        assert {w["profile"] for w in payload["workers"]} == {"development"}
        assert len(payload["session"]["switches"]) == 1  # summed over the workers, listed once
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: ask(workers, "code_generation", f"write a test {n}"), range(16)))
        assert {a.headers["x-biorouter-profile"] for a in answers} == {"development"}
    finally:
        back = {"profile": PROFILE, "reason": "restore"}
        httpx.post(workers.url + "/biorouter/profile", json=back, headers=_headers(workers), timeout=60)
