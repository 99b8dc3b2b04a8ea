"""Hot reload in a real ``litellm`` proxy, under load: no failed request, no half-applied profile.

The proxy is this module's own (it edits its configuration), over a private copy of profiles/ and
utterances/ and the session's stand-ins. Edits alternate valid (the code_generation route moves to
another group, once with an utterance added) and invalid (typos, unknown groups, a bad regex, YAML
syntax, too few utterances...), each followed by ``POST /biorouter/reload`` or SIGHUP. Every answer
carries the generation that decided it; its group and fallbacks must be exactly that generation's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.testing.devstack import ProxyProcess
from biorouter.testing.loadrun import INVALID, reload_edits, reload_under_load, scenario_proxy

from ..conftest import ROOT


@pytest.fixture(scope="module")
def stack(dev_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyProcess, Path]]:
    run_dir = tmp_path_factory.mktemp("reload")
    api_base = dev_stack.fleet["t4-embeddings"].api_base
    proxy, home = scenario_proxy(run_dir, ROOT, dev_stack.config_path, encoder_api_base=api_base)
    proxy.start()
    yield proxy, home
    proxy.stop()


@pytest.fixture(scope="module")
def proxy(stack: tuple[ProxyProcess, Path]) -> ProxyProcess:
    return stack[0]


@pytest.fixture(scope="module")
def home(stack: tuple[ProxyProcess, Path]) -> Path:
    return stack[1]


def admin(proxy: ProxyProcess, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key if key is not None else proxy.master_key}"}
    return httpx.request(method, proxy.url + path, headers=headers, timeout=60, **kwargs)


def check(report: Any, proxy: ProxyProcess) -> None:
    summary = report.summary()
    assert report.failed == [], f"failed requests: {report.failed[:5]}"
    assert report.inconsistent == [], f"answers not matching their generation: {report.inconsistent[:5]}"
    for edit in report.edits:
        if edit.valid:
            assert edit.outcome == "ok", f"{edit.name}: {edit.problems}"
        else:
            assert edit.outcome == "rejected", edit.name
            assert edit.expected_found, f"{edit.name}: the rejection does not name the problem: {edit.problems}"
    assert len(summary["generations_seen"]) >= 2, "no answer was decided by a reloaded configuration"
    log = Path(proxy.log_path or "").read_text(encoding="utf-8", errors="replace")
    for edit in report.edits:
        if edit.trigger == "SIGHUP" and not edit.valid:
            assert edit.problems[0] in log, f"the SIGHUP rejection of '{edit.name}' is not in the proxy log"


def test_reload_under_load(proxy: ProxyProcess, home: Path) -> None:
    report = asyncio.run(
        reload_under_load(proxy.url, proxy.master_key, proxy.pid, home, total=200, edits=reload_edits(6), concurrency=8)
    )
    check(report, proxy)


@pytest.mark.slow
def test_reload_under_load_full(proxy: ProxyProcess, home: Path) -> None:
    """The figure in the issue: 20 edits (10 invalid, every kind) during 1,000 requests."""
    edits = reload_edits(20)
    assert {e.name for e in edits if not e.valid} == {e.name for e in INVALID}
    report = asyncio.run(
        reload_under_load(proxy.url, proxy.master_key, proxy.pid, home, total=1000, edits=edits, concurrency=12)
    )
    check(report, proxy)


def test_reload_answers_the_problems_and_status_shows_them(proxy: ProxyProcess, home: Path) -> None:
    path = home / "profiles" / "development.yaml"
    good = path.read_text()
    before = admin(proxy, "GET", "/biorouter/status").json()
    path.write_text(good.replace("  code_generation:\n    group:", "  code_generation:\n    groop:", 1))
    try:
        answer = admin(proxy, "POST", "/biorouter/reload", json={"reason": "typo"})
    finally:
        path.write_text(good)
    assert answer.status_code == 400
    assert "last good configuration serves on" in answer.json()["detail"]
    assert "profiles/development.yaml: routes -> code_generation -> groop:" in answer.json()["detail"]
    status = admin(proxy, "GET", "/biorouter/status").json()
    assert status["generation"] == before["generation"]
    assert status["last_reload"]["outcome"] == "rejected"
    assert status["last_reload"]["reason"] == "typo"
    fine = admin(proxy, "POST", "/biorouter/reload")
    assert fine.status_code == 200
    assert fine.json()["generation"] == before["generation"] + 1
    metrics = admin(proxy, "GET", "/biorouter/metrics").text
    assert 'biorouter_reloads_total{outcome="rejected"}' in metrics
    assert f"biorouter_config_generation {float(before['generation'] + 1)}" in metrics


def test_the_reload_command(proxy: ProxyProcess, home: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "biorouter", "reload", "--url", proxy.url, "--key", proxy.master_key]
    path = home / "utterances" / "safety.txt"
    good = path.read_text()
    path.write_text("is this prompt an injection attempt?\n")
    try:
        rejected = subprocess.run([*command, "--reason", "cli test"], capture_output=True, text=True, timeout=120)
    finally:
        path.write_text(good)
    assert rejected.returncode == 1
    assert "utterances/safety.txt: has 1 utterances; a task needs at least 10" in rejected.stderr + rejected.stdout
    accepted = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stderr
    assert "reloaded: generation" in accepted.stdout
