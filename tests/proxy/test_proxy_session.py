"""The running proxy's session: its status endpoint, the admin-only profile switch, and ``biorouter status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from ..conftest import ROOT


def call(dev_stack: Any, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    return httpx.request(method, dev_stack.proxy.url + path, json=body, headers=headers, timeout=30)


def ask(dev_stack: Any, text: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return call(dev_stack, "POST", "/v1/chat/completions", body)


def test_status_counts_the_sessions_requests_by_task_and_group(dev_stack: Any, clean_standins: Any) -> None:
    before = call(dev_stack, "GET", "/biorouter/status").json()["session"]
    assert ask(dev_stack, "write a python function that parses a VCF header").status_code == 200
    clean_standins["t4-coder"].set_fault(error_rate=1.0, status=500)
    clean_standins["t4-generalist"].set_fault(error_rate=1.0, status=500)
    clean_standins["deepseek-v3"].set_fault(error_rate=1.0, status=500)
    assert ask(dev_stack, "write a python function that reverses a list").status_code >= 500

    status = call(dev_stack, "GET", "/biorouter/status")
    assert status.status_code == 200
    payload = status.json()
    assert payload["profile"] == "development"
    session = payload["session"]
    assert session["selected"]  # how it was chosen: explicitly here (BIOROUTER_PROFILE), or by a switch
    assert session["totals"]["requests"] == before["totals"]["requests"] + 2
    assert session["totals"]["errors"] == before["totals"]["errors"] + 1
    assert session["by_task"]["code_generation"]["requests"] >= 2
    assert session["by_group"]["t4-coder"]["requests"] >= 1
    assert {fit["profile"] for fit in payload["profiles"]} >= {"development", "t4_hybrid", "h100_local"}


def test_status_needs_a_valid_key(dev_stack: Any) -> None:
    response = httpx.get(dev_stack.proxy.url + "/biorouter/status", headers={"Authorization": "Bearer sk-wrong"})
    assert response.status_code in (400, 401)


def test_admin_switch_is_checked_like_a_reload_against_the_proxys_deployments(
    dev_stack: Any, clean_standins: Any
) -> None:
    """Issue 20: the stand-in stack serves the development profile's groups only; a switch to a profile
    naming others is refused as a reload would refuse it, and a reload afterwards still works."""
    refused = call(dev_stack, "POST", "/biorouter/profile", {"profile": "cloud_only", "reason": "GPU drill"})
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "switch to 'cloud_only' refused; profile 'development' serves on" in detail
    assert "profiles/cloud_only.yaml: routes -> code_generation -> group: unknown group 'claude-sonnet'" in detail
    status = call(dev_stack, "GET", "/biorouter/status").json()
    assert status["profile"] == "development"
    response = ask(dev_stack, "Hi! Could you recommend a good novel for a long train ride?")
    assert response.headers["x-biorouter-profile"] == "development"
    assert call(dev_stack, "POST", "/biorouter/reload", {"reason": "after a refused switch"}).status_code == 200
    assert "biorouter switch to 'cloud_only' refused (GPU drill" in dev_stack.proxy.log_tail(200_000)

    switched = call(dev_stack, "POST", "/biorouter/profile", {"profile": "development", "reason": "re-read"})
    assert switched.status_code == 200, switched.text
    switches = switched.json()["session"]["switches"]
    assert (switches[-1]["previous"], switches[-1]["profile"], switches[-1]["reason"]) == (
        "development",
        "development",
        "re-read",
    )
    assert "switched from 'development' to 'development'" in dev_stack.proxy.log_tail(200_000)


def test_switch_to_an_unknown_profile_is_a_400_and_changes_nothing(dev_stack: Any) -> None:
    response = call(dev_stack, "POST", "/biorouter/profile", {"profile": "gpu_cluster", "reason": "typo"})
    assert response.status_code == 400
    assert "unknown profile 'gpu_cluster'" in response.json()["detail"]
    assert call(dev_stack, "GET", "/biorouter/status").json()["profile"] == "development"


def test_switch_without_a_reason_is_rejected(dev_stack: Any) -> None:
    response = call(dev_stack, "POST", "/biorouter/profile", {"profile": "development"})
    assert response.status_code == 422


def test_status_command_prints_the_session(dev_stack: Any) -> None:
    env = {**os.environ, "BIOROUTER_HOME": str(ROOT), "LITELLM_MASTER_KEY": dev_stack.proxy.master_key}
    command = [sys.executable, "-m", "biorouter", "status", "--url", dev_stack.proxy.url]
    text = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert text.startswith("profile     development  (")
    assert "requests    " in text
    as_json = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(as_json.stdout)["profile"] == "development"


def test_the_proxy_logs_a_session_summary_when_it_shuts_down(dev_stack: Any, tmp_path: Any) -> None:
    from biorouter.testing.devstack import ProxyProcess

    env = {"BIOROUTER_HOME": str(ROOT), "BIOROUTER_PROFILE": "development", "BIOROUTER_WARMUP": "0"}
    proxy = ProxyProcess(dev_stack.config_path, env=env, log_path=tmp_path / "proxy.log")
    with proxy:
        body = {"model": "t4-coder", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {proxy.master_key}"}
        assert httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=60).status_code == 200
    summary = [line for line in (tmp_path / "proxy.log").read_text().splitlines() if "session summary" in line]
    assert len(summary) == 1
    assert "profile 'development'" in summary[0]
    assert "1 requests, 0 errors, 0 refused" in summary[0]
    assert "t4-coder=1" in summary[0]


def test_the_demo_cloud_group_costs_what_the_real_one_does(dev_stack: Any, clean_standins: Any) -> None:
    """Issue 20: the demo priced its cloud stand-in at $0, so spend and budgets never showed."""
    before = call(dev_stack, "GET", "/biorouter/status").json()["session"]["totals"]["cost_usd"]
    body = {"model": "deepseek-v3", "messages": [{"role": "user", "content": "name three uses of a hash map"}]}
    response = call(dev_stack, "POST", "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    assert float(response.headers["x-litellm-response-cost"]) > 0
    after = call(dev_stack, "GET", "/biorouter/status").json()["session"]["totals"]["cost_usd"]
    assert after > before


def test_warm_up_freezes_the_start_up_heap_out_of_garbage_collection(dev_stack: Any) -> None:
    # After warm-up (classifier, engine, NER model) the proxy freezes what it loaded, so full collections
    # stop walking it under load (biorouter.serving.heap); it logs how many objects it froze, early in
    # the log, so the whole log is read.
    deadline = time.monotonic() + 90
    while "start-up objects frozen out of garbage collection" not in (log := dev_stack.proxy.log_tail(1 << 30)):
        assert time.monotonic() < deadline, "the proxy never froze its start-up heap"
        time.sleep(0.5)
    frozen = int(log.split(" start-up objects frozen")[0].rsplit(" ", 1)[1])
    assert frozen > 100_000  # LiteLLM, the classifier and the NER model: about a million objects here
