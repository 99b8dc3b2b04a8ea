"""The spend ledger: the same behaviour from the in-process ledger and from a real Redis on loopback.

Redis runs as a real ``redis-server`` subprocess (one per module; the outage tests start their own,
with an append-only file, and kill it). Each test uses its own key prefix, so tests share a server
without seeing each other's spend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from biorouter.costs.ledger import (
    BudgetScope,
    Denial,
    Ledger,
    MemoryLedger,
    Reservation,
    ScopeUsage,
    SpendRecord,
    format_usd,
)
from biorouter.costs.ledger_redis import RedisLedger
from biorouter.costs.ledger_url import ledger_from_url
from biorouter.testing.redis import RedisServer
from biorouter.testing.standin import free_port

from ..conftest import ROOT

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NO_REDIS = "redis-server is not installed (Debian: apt-get install redis-server, or `make redis`)"
needs_redis = pytest.mark.skipif(not RedisServer.available(), reason=NO_REDIS)

DAY = BudgetScope(key="profile:p", period="day", limit_usd=10.0)
MONTH = BudgetScope(key="profile:p", period="month", limit_usd=100.0)
TASK_DAY = BudgetScope(key="profile:p:task:code", period="day", limit_usd=1.0)


def record(
    cost: float,
    *,
    time: datetime = NOW,
    profile: str = "p",
    task: str | None = "code",
    group: str | None = "cloud",
    user: str | None = None,
    gpu_seconds: float = 0.0,
) -> SpendRecord:
    return SpendRecord(
        time=time, cost_usd=cost, profile=profile, task=task, group=group, user=user, gpu_seconds=gpu_seconds
    )


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


def amounts(usage: list[ScopeUsage]) -> list[tuple[float, float]]:
    return [(round(u.spent_usd, 9), round(u.reserved_usd, 9)) for u in usage]


def reserved(outcome: Reservation | Denial) -> Reservation:
    assert isinstance(outcome, Reservation), outcome.message() if isinstance(outcome, Denial) else outcome
    return outcome


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not RedisServer.available():
        pytest.skip(NO_REDIS)
    with RedisServer(log_path=tmp_path_factory.mktemp("redis") / "redis.log") as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        chosen: Ledger = MemoryLedger()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        chosen = RedisLedger(server.url, prefix=unique_prefix())
    yield chosen
    await chosen.aclose()


# -- reserve -------------------------------------------------------------------------------------


async def test_a_reservation_within_every_limit_sets_the_estimate_aside_in_each_scope(ledger: Ledger) -> None:
    outcome = reserved(await ledger.reserve([DAY, MONTH, TASK_DAY], 0.25, now=NOW))

    assert outcome.estimate_usd == 0.25
    assert outcome.scopes == (DAY, MONTH, TASK_DAY)
    assert outcome.created_at == NOW
    assert amounts(await ledger.usage([DAY, MONTH, TASK_DAY], now=NOW)) == [(0.0, 0.25)] * 3


async def test_a_reservation_over_a_limit_changes_nothing_and_names_the_scope_it_does_not_fit(ledger: Ledger) -> None:
    await ledger.settle(None, record(0.9), [DAY, TASK_DAY])
    reserved(await ledger.reserve([DAY, TASK_DAY], 0.04, now=NOW))

    denial = await ledger.reserve([DAY, TASK_DAY], 0.1, now=NOW)

    assert isinstance(denial, Denial)
    assert denial.scope == TASK_DAY
    assert denial.reason == "over_budget"
    assert (round(denial.spent_usd, 9), round(denial.reserved_usd, 9), denial.estimate_usd) == (0.9, 0.04, 0.1)
    assert denial.message() == (
        "daily budget of profile:p:task:code ($1.00): $0.90 spent + $0.04 reserved + $0.10 estimate exceeds it"
    )
    assert amounts(await ledger.usage([DAY, TASK_DAY], now=NOW)) == [(0.9, 0.04), (0.9, 0.04)]


async def test_a_request_that_costs_nothing_or_has_no_budget_reserves_nothing(ledger: Ledger) -> None:
    await ledger.settle(None, record(1.0), [TASK_DAY])  # the task's budget is used up

    free = reserved(await ledger.reserve([TASK_DAY], 0.0, now=NOW))
    unbudgeted = reserved(await ledger.reserve([], 5.0, now=NOW))

    assert free.scopes == ()
    assert unbudgeted.scopes == ()
    assert amounts(await ledger.usage([TASK_DAY], now=NOW)) == [(1.0, 0.0)]
    with pytest.raises(ValueError, match="estimate must be a finite amount >= 0"):
        await ledger.reserve([DAY], -0.01, now=NOW)


# -- settle and release --------------------------------------------------------------------------


async def test_settle_gives_the_reservation_back_and_spends_the_actual_cost(ledger: Ledger) -> None:
    outcome = reserved(await ledger.reserve([DAY, MONTH], 0.5, now=NOW))

    await ledger.settle(outcome, record(0.3), [DAY, MONTH])

    assert amounts(await ledger.usage([DAY, MONTH], now=NOW)) == [(0.3, 0.0), (0.3, 0.0)]


async def test_settling_the_same_reservation_twice_counts_it_once(ledger: Ledger) -> None:
    outcome = reserved(await ledger.reserve([DAY], 0.5, now=NOW))

    await ledger.settle(outcome, record(0.4), [DAY])
    await ledger.settle(outcome, record(0.4), [DAY])

    assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.4, 0.0)]
    total = [row for row in await ledger.report(NOW.date(), NOW.date()) if row.dimension == "total"]
    assert [(round(row.cost_usd, 9), row.requests) for row in total] == [(0.4, 1)]


async def test_release_gives_a_reservation_back_once_without_spending(ledger: Ledger) -> None:
    kept = reserved(await ledger.reserve([DAY], 0.3, now=NOW))
    dropped = reserved(await ledger.reserve([DAY], 0.5, now=NOW))

    await ledger.release(dropped)
    assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.0, 0.3)]
    await ledger.release(dropped)
    assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.0, 0.3)]

    # a late settle of a released reservation records its spend but gives nothing back twice
    await ledger.settle(dropped, record(0.2), [DAY])
    assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.2, 0.3)]
    await ledger.settle(kept, record(0.3), [DAY])
    assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.5, 0.0)]


# -- periods and reports -------------------------------------------------------------------------


async def test_budgets_run_per_utc_day_and_month_from_the_moment_of_the_reservation(ledger: Ledger) -> None:
    before_midnight = datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC)
    day = BudgetScope(key="profile:p", period="day", limit_usd=1.0)
    outcome = reserved(await ledger.reserve([day, MONTH], 0.75, now=before_midnight))

    # the call ends in the next day and month: spent where it reserved, reported where it ended
    await ledger.settle(outcome, record(0.75, time=before_midnight + timedelta(seconds=30)), [day, MONTH])

    assert amounts(await ledger.usage([day, MONTH], now=datetime(2026, 11, 5, tzinfo=UTC))) == [(0, 0), (0.75, 0)]
    assert amounts(await ledger.usage([day, MONTH], now=before_midnight)) == [(0.75, 0.0), (0.75, 0.0)]
    assert amounts(await ledger.usage([day, MONTH], now=datetime(2026, 12, 1, 8, tzinfo=UTC))) == [(0, 0), (0, 0)]
    denial = await ledger.reserve([day], 0.5, now=before_midnight)
    assert isinstance(denial, Denial)
    assert denial.scope == day
    reserved(await ledger.reserve([day], 0.5, now=datetime(2026, 12, 1, 8, tzinfo=UTC)))
    assert await ledger.report(date(2026, 11, 30), date(2026, 11, 30)) == []
    assert [row.dimension for row in await ledger.report(date(2026, 12, 1), date(2026, 12, 1))] == [
        "total",
        "profile",
        "task",
        "group",
        "user",
    ]


async def test_report_has_a_row_per_day_dimension_and_key_within_the_inclusive_range(ledger: Ledger) -> None:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    for finished in (
        record(0.1, time=at - timedelta(hours=1), user="alice"),  # the day before: outside
        record(0.2, time=at + timedelta(hours=10), user="alice"),
        record(0.0, time=at + timedelta(hours=11), task="chat", group="local", user="bob", gpu_seconds=3.5),
        record(0.3, time=at + timedelta(days=1, hours=9), profile="q", task=None, group=None),
        record(0.4, time=at + timedelta(days=2)),  # the day after: outside
    ):
        await ledger.settle(None, finished, [])

    rows = await ledger.report(date(2026, 11, 22), date(2026, 11, 23))

    d22, d23 = date(2026, 11, 22), date(2026, 11, 23)
    assert [(r.day, r.dimension, r.key, round(r.cost_usd, 9), r.requests, r.gpu_seconds) for r in rows] == [
        (d22, "total", "", 0.2, 2, 3.5),
        (d22, "profile", "p", 0.2, 2, 3.5),
        (d22, "task", "chat", 0.0, 1, 3.5),
        (d22, "task", "code", 0.2, 1, 0.0),
        (d22, "group", "cloud", 0.2, 1, 0.0),
        (d22, "group", "local", 0.0, 1, 3.5),
        (d22, "user", "alice", 0.2, 1, 0.0),
        (d22, "user", "bob", 0.0, 1, 3.5),
        (d23, "total", "", 0.3, 1, 0.0),
        (d23, "profile", "q", 0.3, 1, 0.0),
        (d23, "task", "-", 0.3, 1, 0.0),
        (d23, "group", "-", 0.3, 1, 0.0),
        (d23, "user", "-", 0.3, 1, 0.0),
    ]


# -- concurrency ---------------------------------------------------------------------------------


async def test_fifty_concurrent_requests_near_a_limit_never_overspend_it(ledger: Ledger) -> None:
    scope = BudgetScope(key="profile:busy", period="day", limit_usd=1.0)
    estimate = 0.048  # 20 fit, 21 do not

    async def request() -> bool:
        outcome = await ledger.reserve([scope, MONTH], estimate, now=NOW)
        if isinstance(outcome, Denial):
            assert outcome.scope == scope
            return False
        await asyncio.sleep(0.01)  # the call
        await ledger.settle(outcome, record(estimate), [scope, MONTH])
        return True

    served = await asyncio.gather(*(request() for _ in range(50)))

    assert sum(served) == math.floor(scope.limit_usd / estimate) == 20
    [usage] = await ledger.usage([scope], now=NOW)
    assert usage.spent_usd <= scope.limit_usd
    assert amounts([usage]) == [(round(20 * estimate, 9), 0.0)]


# -- Redis shared by replicas and processes ------------------------------------------------------

_OTHER_PROCESS = """
import asyncio, json, sys
from datetime import datetime
from biorouter.costs.ledger import BudgetScope, Denial, SpendRecord
from biorouter.costs.ledger_redis import RedisLedger

async def main(url, prefix, amount, now):
    async with RedisLedger(url, prefix=prefix) as ledger:
        scope = BudgetScope(key="profile:shared", period="day", limit_usd=1.0)
        outcome = await ledger.reserve([scope], amount, now=now)
        if isinstance(outcome, Denial):
            result = outcome.reason
        else:
            spend = SpendRecord(time=now, cost_usd=amount, profile="shared", task=None, group="cloud")
            await ledger.settle(outcome, spend, [scope])
            result = "spent"
        [usage] = await ledger.usage([scope], now=now)
        print(json.dumps({"outcome": result, "spent": usage.spent_usd, "degraded": ledger.degraded}))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), datetime.fromisoformat(sys.argv[4])))
"""


async def spend_in_another_process(url: str, prefix: str, amount: float) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OTHER_PROCESS,
        url,
        prefix,
        repr(amount),
        NOW.isoformat(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@needs_redis
async def test_replicas_and_other_processes_share_one_budget(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    scope = BudgetScope(key="profile:shared", period="day", limit_usd=1.0)
    async with (
        RedisLedger(redis_server.url, prefix=prefix) as first,
        RedisLedger(redis_server.url, prefix=prefix) as second,
    ):
        assert await spend_in_another_process(redis_server.url, prefix, 0.6) == {
            "outcome": "spent",
            "spent": 0.6,
            "degraded": False,
        }
        assert amounts(await first.usage([scope], now=NOW)) == [(0.6, 0.0)]

        outcome = reserved(await second.reserve([scope], 0.4, now=NOW))
        assert amounts(await first.usage([scope], now=NOW)) == [(0.6, 0.4)]
        await second.settle(outcome, record(0.4, profile="shared"), [scope])

        denial = await first.reserve([scope], 0.05, now=NOW)
        assert isinstance(denial, Denial)
        assert denial.reason == "over_budget"
        assert round(denial.spent_usd, 9) == 1.0
        assert await spend_in_another_process(redis_server.url, prefix, 0.05) == {
            "outcome": "over_budget",
            "spent": 1.0,
            "degraded": False,
        }


# -- Redis outages -------------------------------------------------------------------------------


@needs_redis
@pytest.mark.parametrize("fail_mode", ["closed", "open"])
async def test_a_redis_outage_keeps_serving_in_memory_and_reconciles_when_redis_returns(
    fail_mode: Literal["closed", "open"], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(data_dir=tmp_path / "data", log_path=tmp_path / "redis.log").start()
    prefix = unique_prefix()
    ledger = RedisLedger(server.url, fail_mode=fail_mode, prefix=prefix, retry_interval_s=0.2)
    scopes = [DAY, MONTH]
    try:
        for _ in range(2):
            await ledger.settle(reserved(await ledger.reserve(scopes, 1.0, now=NOW)), record(1.0), scopes)
        in_flight = reserved(await ledger.reserve(scopes, 0.5, now=NOW))  # settled during the outage
        abandoned = reserved(await ledger.reserve(scopes, 0.25, now=NOW))  # released during the outage

        server.kill()
        with caplog.at_level(logging.WARNING, logger="biorouter.ledger"):
            during = await ledger.reserve(scopes, 1.0, now=NOW)
            assert ledger.degraded
            expected_spent = 2.0 + 0.5 + 0.25
            if fail_mode == "closed":
                assert isinstance(during, Denial)
                assert (during.reason, during.scope) == ("ledger_unavailable", DAY)
                assert "unreachable and budgets fail closed" in during.message()
                late = None
            else:
                await ledger.settle(reserved(during), record(0.75), scopes)
                late = reserved(await ledger.reserve(scopes, 0.1, now=NOW))  # settled after Redis returns
                expected_spent += 0.75 + 0.1
            await ledger.settle(in_flight, record(0.5), scopes)
            await ledger.release(abandoned)
            await ledger.settle(None, record(0.25), scopes)  # no reservation: a request without a budget check
            reserved(await ledger.reserve(scopes, 0.0, now=NOW))  # a free (local) request still passes
            assert len(await ledger.usage(scopes, now=NOW)) == 2
            assert await ledger.report(NOW.date(), NOW.date())  # what this process counted meanwhile
            assert ledger.degraded

        outage_warnings = [
            r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "unreachable" in r.getMessage()
        ]
        assert len(outage_warnings) == 1, outage_warnings
        assert f"Redis at {server.url} unreachable" in outage_warnings[0]
        assert outage_warnings[0].endswith(
            "budgets fail closed for cloud spend" if fail_mode == "closed" else "budgets fail open"
        )

        server.start()
        await asyncio.sleep(ledger.retry_interval_s + 0.05)
        if late is not None:
            await ledger.settle(late, record(0.1), scopes)
        usage = await ledger.usage(scopes, now=NOW)
        assert not ledger.degraded
        assert amounts(usage) == [(expected_spent, 0.0)] * 2

        async with RedisLedger(server.url, prefix=prefix) as replica:  # Redis itself holds the totals
            assert amounts(await replica.usage(scopes, now=NOW)) == [(expected_spent, 0.0)] * 2
            [total] = [row for row in await replica.report(NOW.date(), NOW.date()) if row.dimension == "total"]
            assert (round(total.cost_usd, 9), total.requests) == (expected_spent, 4 if fail_mode == "closed" else 6)
            await replica.settle(in_flight, record(0.5), scopes)  # settled once, during the outage
            assert amounts(await replica.usage(scopes, now=NOW)) == [(expected_spent, 0.0)] * 2
        reserved(await ledger.reserve(scopes, 1.0, now=NOW))
    finally:
        await ledger.aclose()
        server.stop()


@needs_redis
async def test_a_redis_that_never_answers_degrades_instead_of_failing(caplog: pytest.LogCaptureFixture) -> None:
    async with RedisLedger(f"redis://127.0.0.1:{free_port()}/0", retry_interval_s=0.2) as ledger:
        denial = await ledger.reserve([DAY], 0.1, now=NOW)
        await ledger.settle(None, record(0.1), [DAY])

        assert isinstance(denial, Denial)
        assert denial.reason == "ledger_unavailable"
        assert ledger.degraded
        assert amounts(await ledger.usage([DAY], now=NOW)) == [(0.1, 0.0)]


# -- construction and messages -------------------------------------------------------------------


def test_ledger_from_url_picks_the_backend() -> None:
    assert isinstance(ledger_from_url(None), MemoryLedger)
    assert isinstance(ledger_from_url(""), MemoryLedger)
    shared = ledger_from_url("redis://:secret@127.0.0.1:6390/0", fail_mode="open")
    assert isinstance(shared, RedisLedger)
    assert (shared.backend, shared.fail_mode) == ("redis", "open")
    assert "secret" not in repr(shared)
    with pytest.raises(ValueError, match="ledger URL 'postgres://db': expected redis://"):
        ledger_from_url("postgres://db")


def test_denial_message_names_the_period_scope_limit_and_amounts() -> None:
    scope = BudgetScope(key="profile:t4_hybrid", period="day", limit_usd=20)
    denial = Denial(scope=scope, spent_usd=19.95, reserved_usd=0.04, estimate_usd=0.03, reason="over_budget")
    assert denial.message() == (
        "daily budget of profile:t4_hybrid ($20.00): $19.95 spent + $0.04 reserved + $0.03 estimate exceeds it"
    )
    monthly = scope.model_copy(update={"period": "month", "limit_usd": 1500})
    assert Denial(
        scope=monthly, spent_usd=1499.9991, reserved_usd=0, estimate_usd=0.0012, reason="over_budget"
    ).message() == (
        "monthly budget of profile:t4_hybrid ($1,500.00): $1,500.00 spent + $0.00 reserved + $0.0012 estimate "
        "exceeds it"
    )
    assert [format_usd(x) for x in (0, 0.5, 0.00001, 0.0000001)] == ["$0.00", "$0.50", "$0.00001", "<$0.000001"]


def test_importing_the_ledger_imports_no_redis_client(tmp_path: Path) -> None:
    code = (
        "import sys, json, biorouter.costs.ledger as ledger\n"
        "missing = [n for n in ledger.__all__ if n != 'RedisLedger' and not hasattr(ledger, n)]\n"
        "print(json.dumps({'redis': 'redis' in sys.modules, 'missing': missing}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"redis": False, "missing": []}
