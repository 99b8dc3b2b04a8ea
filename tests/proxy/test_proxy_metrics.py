"""biorouter's metrics and debug routing lines from the real proxy (the session's ``dev_stack``).

The proxy was started with ``BIOROUTER_METRICS_PORT`` and ``BIOROUTER_DEBUG_ROUTING=1``; each test
scrapes the endpoint before and after its requests and compares.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from biorouter.governance.request_view import view_request

from .conftest import ask

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CODE = "write a python function that parses a FASTA file into a dict"
MATH = "What is the variance of a fair six-sided die roll?"
MRN = "Summarise the last visit of MRN: 00482913 for the referral letter"


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return parse(response.text)


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (found, have), value in samples.items() if found == name and wanted <= have)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def eventually(port: int, name: str, expected: float, **labels: str) -> float:
    """The value once it reaches ``expected``: success events run after the response is sent."""
    deadline = time.monotonic() + 10
    while True:
        found = total(scrape(port), name, **labels)
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_routed_request_is_counted_on_the_metrics_port(client, clean_standins, proxy_metrics_port) -> None:
    labels = {"profile": "development", "mode": "routed", "task": "code_generation", "group": "t4-coder"}
    before = scrape(proxy_metrics_port)
    _, headers = ask(client, CODE)
    after = scrape(proxy_metrics_port)

    assert headers["x-biorouter-group"] == "t4-coder"
    assert delta(before, after, "biorouter_decisions_total", **labels) == 1
    assert delta(before, after, "biorouter_decision_seconds_count") == 1
    assert total(after, "biorouter_budget_limit_usd", scope="profile:development", period="day") == 1.0


def test_proxy_serves_the_same_metrics_on_its_own_port_behind_the_key(dev_stack, client, proxy_metrics_port) -> None:
    ask(client, CODE)
    url = dev_stack.proxy.url + "/biorouter/metrics"
    assert httpx.get(url, headers={"Authorization": "Bearer sk-wrong"}, timeout=10).status_code in (400, 401)
    response = httpx.get(url, headers={"Authorization": f"Bearer {dev_stack.proxy.master_key}"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    labels = {"task": "code_generation", "group": "t4-coder"}
    assert total(parse(response.text), "biorouter_decisions_total", **labels) >= 1
    assert "biorouter_decisions_total" in httpx.get(f"http://127.0.0.1:{proxy_metrics_port}/metrics").text


def test_refusals_are_counted_once_each(client, clean_standins, proxy_metrics_port) -> None:
    before = scrape(proxy_metrics_port)
    with pytest.raises(openai.APIStatusError) as named_cloud:  # identifiers to a cloud group: refused before the call
        ask(client, MRN, model="deepseek-v3")
    for group in ("t4-bio", "t4-generalist"):
        clean_standins[group].set_fault(down=True)
    with pytest.raises(openai.APIStatusError) as all_down:  # local-only, every local group down: refused after
        ask(client, "Interpret the pathogenicity of a BRCA1 frameshift variant for this family")
    after = scrape(proxy_metrics_port)

    assert named_cloud.value.status_code == 503
    assert all_down.value.status_code == 503

    refusals = {"profile": "development"}
    assert delta(before, after, "biorouter_refusals_total", stage="before_call", **refusals) == 1
    assert delta(before, after, "biorouter_refusals_total", stage="after_call", **refusals) == 1
    assert delta(before, after, "biorouter_refusals_total", **refusals) == 2  # the failure hook adds none
    assert delta(before, after, "biorouter_refusal_rules_total", rule="content:medical_record_number", **refusals) == 1
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0


def test_fallback_to_another_group_is_counted(client, clean_standins, proxy_metrics_port) -> None:
    labels = {"profile": "development", "decided_group": "t4-math", "served_group": "t4-generalist"}
    before = total(scrape(proxy_metrics_port), "biorouter_fallbacks_total", **labels)
    clean_standins["t4-math"].set_fault(error_rate=1.0, status=500)
    answer, headers = ask(client, MATH)

    assert headers["x-biorouter-group"] == "t4-math"
    assert answer.startswith("[t4-generalist]")
    assert eventually(proxy_metrics_port, "biorouter_fallbacks_total", before + 1, **labels) == before + 1


def test_debug_routing_line_is_bare_json_without_the_prompt(dev_stack, client, clean_standins) -> None:
    _, headers = ask(client, MRN)
    digest = view_request([{"role": "user", "content": MRN}]).text_sha256[:16]
    log = dev_stack.run_dir / "proxy.log"

    def matching() -> list[dict[str, Any]]:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{") and digest in line]

    deadline = time.monotonic() + 10
    while not (records := matching()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records, "no debug routing line for the request in the proxy log"
    record = records[-1]
    assert record["event"] == "biorouter.decision"
    assert record["group"] == headers["x-biorouter-group"]
    assert record["request_id"] not in ("", "-")
    assert "content:medical_record_number" in record["local_only_rules"]
    assert "00482913" not in json.dumps(records)
    assert "00482913" not in "\n".join(
        line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if "biorouter" in line
    )
