"""The ledger's Redis killed and restarted under load: no failed request, the outage visible, spend reconciled.

A proxy of this module's own uses a real ``redis-server`` as its ledger (``REDIS_URL``) and, through
``router_settings.redis_host``, as LiteLLM's own router state too. Every other request takes a
priced cloud route. While Redis is down the ledger counts in memory, decisions carry
``x-biorouter-degraded: ledger:unavailable``, and the default ``ledger_unavailable: closed`` keeps
cloud spend it cannot check from happening: those requests are served by the route's local groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.testing.devstack import ProxyProcess
from biorouter.testing.loadrun import RedisOutageReport, redis_outage, scenario_proxy
from biorouter.testing.redis import RedisServer

from ..conftest import ROOT

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="redis-server is not installed (make redis)")


@pytest.fixture(scope="module")
def proxy(dev_stack: Any, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    run_dir = tmp_path_factory.mktemp("outage")
    started, _ = scenario_proxy(
        run_dir,
        ROOT,
        dev_stack.config_path,
        encoder_api_base=dev_stack.fleet["t4-embeddings"].api_base,
        redis_url=redis.url,
        litellm_redis_port=redis.port,
    )
    started.start()
    yield started
    started.stop()


def outages_logged(proxy: ProxyProcess) -> int:
    log = Path(proxy.log_path or "").read_text(encoding="utf-8", errors="replace")
    return log.count("): counting in memory; budgets")  # the ledger's one warning per outage


def check(report: RedisOutageReport, proxy: ProxyProcess, outages_before: int) -> None:
    summary = report.summary()
    assert report.load.failed == [], f"failed requests: {report.load.failed[:5]}"
    assert summary["decided_degraded"] > 0, f"no decision saw the outage: {summary}"
    assert summary["cloud_served_while_degraded"] == 0, "cloud spend the ledger could not check was made"
    assert summary["cloud_served"] > 0, "no request reached the cloud group at all: the run proves nothing"
    assert report.recovered_after_s is not None, "decisions still degraded after Redis came back"
    log = Path(proxy.log_path or "").read_text(encoding="utf-8", errors="replace")
    assert "Redis back; reconciled" in log
    # one outage, one warning: a restarted Redis must not look like new outages (stale pooled connections)
    assert outages_logged(proxy) == outages_before + 1
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    status = httpx.get(proxy.url + "/biorouter/status", headers=headers, timeout=30).json()
    assert status["degraded"] == []
    metrics = httpx.get(proxy.url + "/biorouter/metrics", headers=headers, timeout=30).text
    assert 'biorouter_degraded{component="ledger"} 0.0' in metrics


def test_redis_killed_and_restarted_under_load(proxy: ProxyProcess, redis: RedisServer) -> None:
    before = outages_logged(proxy)
    report = asyncio.run(
        redis_outage(proxy.url, proxy.master_key, kill=redis.kill, restart=redis.start, total=150, concurrency=8)
    )
    check(report, proxy, before)


@pytest.mark.slow
def test_redis_killed_and_restarted_under_load_full(proxy: ProxyProcess, redis: RedisServer) -> None:
    before = outages_logged(proxy)
    report = asyncio.run(
        redis_outage(proxy.url, proxy.master_key, kill=redis.kill, restart=redis.start, total=1000, concurrency=12)
    )
    check(report, proxy, before)
