"""``biorouter spend`` against a real redis-server: tables per dimension, periods, JSON, plot, errors.

The ledger is seeded once through ``RedisLedger.settle`` (what the proxy calls after each request)
with requests on days relative to today, so the counters' expiry never hides them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from biorouter.cli.main import main
from biorouter.costs.ledger import SpendRecord
from biorouter.costs.ledger_redis import RedisLedger
from biorouter.testing.redis import RedisServer

pytestmark = pytest.mark.skipif(not RedisServer.available(), reason="needs redis-server on PATH")

TODAY = datetime.now(UTC).date()
DAY = {n: TODAY - timedelta(days=n) for n in (1, 2, 4, 10)}

# days ago, profile, task, group, user, cost (USD), GPU-seconds
REQUESTS = [
    (1, "t4_hybrid", "code_generation", "deepseek-v3", "alice", 0.0125, 0.0),
    (1, "t4_hybrid", "biomedical", "t4-bio", "bob", 0.0, 3.5),
    (2, "t4_hybrid", "math_statistics", "deepseek-v3", "alice", 0.02, 0.0),
    (2, "development", "code_generation", "t4-coder", None, 0.0, 1.25),
    (4, "t4_hybrid", "biomedical", "claude-sonnet", "carol", 0.5, 0.0),
    (10, "development", None, None, None, 1.0, 0.0),
]

Table = dict[str, tuple[float, int, float, str]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _seed(url: str) -> None:
    ledger = RedisLedger(url)
    try:
        for days_ago, profile, task, group, user, cost, gpu in REQUESTS:
            record = SpendRecord(
                time=datetime.combine(DAY[days_ago], time(12, 0), tzinfo=UTC),
                cost_usd=cost,
                profile=profile,
                task=task,
                group=group,
                user=user,
                gpu_seconds=gpu,
            )
            await ledger.settle(None, record, scopes=[])
        assert not ledger.degraded, "the seed went to memory, not to Redis"
    finally:
        await ledger.aclose()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    server = RedisServer(_free_port(), log_path=log).start()
    try:
        asyncio.run(_seed(server.url))
        yield server.url
    finally:
        server.stop()


def spend(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["spend", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(out: str) -> tuple[Table, tuple[float, int, float, str]]:
    """The printed lines by key, and the total line: (cost, requests, GPU-seconds, share)."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "cost (USD)" in line)
    rows: Table = {}
    for line in lines[header + 1 :]:
        if line.startswith("---"):
            continue
        key, cost, requests, gpu, share = line.split()
        rows[key] = (float(cost), int(requests), float(gpu), share)
    return rows, rows.pop("total")


def test_spend_by_group_is_the_default_over_the_last_7_days(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spend(capsys, "--redis-url", redis_url)
    assert code == 0
    assert f"period  {TODAY - timedelta(days=7)} to {TODAY}" in out
    rows, total = table(out)
    assert out.splitlines()[3].split()[0] == "group"
    assert rows == {
        "claude-sonnet": (0.5, 1, 0.0, "93.9%"),
        "deepseek-v3": (0.0325, 2, 0.0, "6.1%"),
        "t4-bio": (0.0, 1, 3.5, "0.0%"),
        "t4-coder": (0.0, 1, 1.2, "0.0%"),  # 1.25 GPU-seconds, one decimal
    }
    assert list(rows) == ["claude-sonnet", "deepseek-v3", "t4-bio", "t4-coder"], "by cost, then GPU-seconds"
    assert total == (0.5325, 5, 4.8, "100.0%")


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        pytest.param(
            "profile",
            {"t4_hybrid": (0.5325, 4, 3.5, "100.0%"), "development": (0.0, 1, 1.2, "0.0%")},
            id="profile",
        ),
        pytest.param(
            "task",
            {
                "biomedical": (0.5, 2, 3.5, "93.9%"),
                "math_statistics": (0.02, 1, 0.0, "3.8%"),
                "code_generation": (0.0125, 2, 1.2, "2.3%"),
            },
            id="task",
        ),
        pytest.param(
            "user",
            {
                "carol": (0.5, 1, 0.0, "93.9%"),
                "alice": (0.0325, 2, 0.0, "6.1%"),
                "bob": (0.0, 1, 3.5, "0.0%"),
                "(none)": (0.0, 1, 1.2, "0.0%"),
            },
            id="user-with-requests-that-had-none",
        ),
        pytest.param(
            "day",
            {
                str(DAY[4]): (0.5, 1, 0.0, "93.9%"),
                str(DAY[2]): (0.02, 2, 1.2, "3.8%"),
                str(DAY[1]): (0.0125, 2, 3.5, "2.3%"),
            },
            id="day",
        ),
    ],
)
def test_spend_prints_one_line_per_key_of_the_dimension_and_the_same_total(
    redis_url: str, capsys: pytest.CaptureFixture[str], by: str, expected: Table
) -> None:
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--by", by)
    assert code == 0
    rows, total = table(out)
    assert rows == expected
    assert list(rows) == list(expected)
    assert total == (0.5325, 5, 4.8, "100.0%")


def test_since_and_until_select_whole_utc_days_both_included(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = spend(
        capsys, "--redis-url", redis_url, "--since", str(DAY[10]), "--until", str(DAY[2]), "--by", "task"
    )
    assert code == 0
    rows, total = table(out)
    assert rows == {
        "(none)": (1.0, 1, 0.0, "65.8%"),  # the request counted without a task
        "biomedical": (0.5, 1, 0.0, "32.9%"),
        "math_statistics": (0.02, 1, 0.0, "1.3%"),
        "code_generation": (0.0, 1, 1.2, "0.0%"),
    }
    assert total == (1.52, 4, 1.2, "100.0%")


def test_since_as_an_age_starts_at_the_beginning_of_that_utc_day(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--since", "24h", "--by", "day")
    assert code == 0
    rows, total = table(out)
    assert rows == {str(DAY[1]): (0.0125, 2, 3.5, "100.0%")}
    assert total == (0.0125, 2, 3.5, "100.0%")


def test_a_period_without_requests_says_so(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    since, until = TODAY - timedelta(days=30), TODAY - timedelta(days=20)
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--since", str(since), "--until", str(until))
    assert code == 0
    assert out.startswith(f"no spend recorded between {since} and {until}")


def test_json_lists_the_lines_and_the_total(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--by", "profile", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["since"] == str(TODAY - timedelta(days=7))
    assert report["until"] == str(TODAY)
    assert report["by"] == "profile"
    assert report["ledger"] == redis_url
    assert report["rows"] == [
        {"key": "t4_hybrid", "cost_usd": 0.5325, "requests": 4, "gpu_seconds": 3.5, "share": 1.0},
        {"key": "development", "cost_usd": 0.0, "requests": 1, "gpu_seconds": 1.25, "share": 0.0},
    ]
    assert report["total"] == {"key": "total", "cost_usd": 0.5325, "requests": 5, "gpu_seconds": 4.75, "share": 1.0}


def test_json_of_an_empty_period_has_no_rows(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--since", "2020-01-01", "--until", "2020-01-31", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == []
    assert report["total"] == {"key": "total", "cost_usd": 0.0, "requests": 0, "gpu_seconds": 0.0, "share": None}


@pytest.mark.parametrize("by", ["group", "day"])
def test_plot_writes_a_png_bar_chart(
    redis_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, by: str
) -> None:
    png = tmp_path / f"spend-{by}.png"
    code, out, _ = spend(capsys, "--redis-url", redis_url, "--by", by, "--plot", str(png))
    assert code == 0
    assert "total" in out
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_without_matplotlib_names_the_plot_extra(
    redis_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code, _, err = spend(capsys, "--redis-url", redis_url, "--plot", str(tmp_path / "spend.png"))
    assert code == 1
    assert "pip install 'biorouter[plot]'" in err
    assert not (tmp_path / "spend.png").exists()


def test_redis_url_comes_from_the_environment(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    code, out, _ = spend(capsys, "--by", "profile")
    assert code == 0
    assert "(from REDIS_URL)" in out
    assert table(out)[1] == (0.5325, 5, 4.8, "100.0%")


def test_redis_url_comes_from_biorouter_yaml(
    redis_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "biorouter.yaml").write_text("version: 1\nledger:\n  redis_url: os.environ/SPEND_TEST_REDIS\n")
    monkeypatch.setenv("BIOROUTER_HOME", str(tmp_path))
    monkeypatch.setenv("SPEND_TEST_REDIS", redis_url)
    code, out, _ = spend(capsys)
    assert code == 0
    assert f"(from 'ledger: redis_url:' in {tmp_path / 'biorouter.yaml'})" in out
    assert table(out)[1] == (0.5325, 5, 4.8, "100.0%")


def test_without_any_redis_url_explains_that_reports_need_a_shared_ledger(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "biorouter.yaml").write_text("version: 1\n")
    monkeypatch.setenv("BIOROUTER_HOME", str(tmp_path))
    code, out, err = spend(capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("biorouter spend: no shared ledger to read: pass --redis-url URL, set REDIS_URL")
    assert "counts spend in its own memory, which no other process can read" in err


def test_an_unreachable_redis_is_an_error_not_an_empty_report(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    code, out, err = spend(capsys, "--redis-url", url)
    assert code == 1
    assert out == ""
    assert f"biorouter spend: the ledger at {url} (from --redis-url) is unreachable" in err


def test_a_url_that_is_not_redis_is_refused_with_the_forms_expected(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = spend(capsys, "--redis-url", "http://user:secret@127.0.0.1:6379")
    assert code == 1
    assert out == ""
    assert "http://user:***@127.0.0.1:6379 (from --redis-url) is not a Redis URL: expected redis://HOST:PORT/DB" in err
    assert "secret" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since 'last tuesday' is not a time; expected an age"),
        (["--until", "2026-13-01"], "--until '2026-13-01' is not a time"),
        (["--since", "2026-11-07", "--until", "2026-11-01"], "--until 2026-11-01 is before --since 2026-11-07"),
    ],
)
def test_a_bad_period_exits_1_and_says_which_flag(
    redis_url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = spend(capsys, "--redis-url", redis_url, *args)
    assert code == 1
    assert out == ""
    assert message in err
