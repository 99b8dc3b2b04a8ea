"""biorouter's metrics from ``BioRouter.acompletion()``: a real router, the stand-ins, the endpoint scraped over HTTP.

Counters are process-wide and other tests add to them, so every assertion compares a scrape taken
before the request with one taken after.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from biorouter import metrics
from biorouter.errors import KeptLocalError
from biorouter.serving.engine import BioRouter
from biorouter.settings import MetricsSettings, Settings, load_settings
from biorouter.testing.standin import free_port

from ..conftest import ROOT
from ..governance_cases import CLOUD

CODE = [{"role": "user", "content": "write a python function that reverses the order of words in a sentence"}]
BIO = [{"role": "user", "content": "what is the function of the BRCA2 protein in DNA repair?"}]
MRN = [{"role": "user", "content": "Summarise the last visit of MRN: 00482913 for the referral letter"}]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (found, have), value in samples.items() if found == name and wanted <= have)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return sample(after, name, **labels) - sample(before, name, **labels)


@pytest.fixture
def endpoint() -> Iterator[int]:
    """A fresh metrics endpoint on a free loopback port, stopped afterwards."""
    metrics.stop()
    port = free_port()
    yield port
    metrics.stop()


@pytest.fixture
def make_engine(dev_stack: Any, classifier: Any, endpoint: int) -> Callable[..., BioRouter]:
    """Engines with their own router (cooldowns stay with the test) serving metrics on ``endpoint``."""

    def make(litellm_config: Path | None = None) -> BioRouter:
        settings: Settings = load_settings(ROOT)
        settings = settings.model_copy(update={"metrics": MetricsSettings(port=endpoint)})
        return BioRouter.from_settings(
            settings,
            profile="development",
            litellm_config=litellm_config or dev_stack.config_path,
            classifier=classifier,
        )

    return make


async def test_first_call_starts_the_endpoint_and_the_decision_is_counted(
    make_engine: Callable[..., BioRouter], endpoint: int, clean_standins: Any
) -> None:
    engine = make_engine()
    assert metrics.serving_port() is None  # building an engine serves nothing (CLI commands build them too)
    await engine.acompletion(CODE)  # starts the endpoint, then decides
    assert metrics.serving_port() == endpoint
    before = scrape(endpoint)

    response = await engine.acompletion(CODE)
    after = scrape(endpoint)

    assert response._hidden_params["biorouter"].group == "t4-coder"
    labels = {"profile": "development", "task": "code_generation", "group": "t4-coder", "mode": "routed"}
    assert delta(before, after, "biorouter_decisions_total", **labels) == 1
    for histogram in ("biorouter_decision_seconds_count", "biorouter_classification_seconds_count"):
        assert delta(before, after, histogram) == 1
    assert sample(after, "biorouter_decisions_total", task_source="classifier", local_only="false", **labels) > 0


async def test_refusals_are_counted_by_stage_and_rule(
    make_engine: Callable[..., BioRouter], endpoint: int, clean_standins: Any
) -> None:
    engine = make_engine()
    metrics.serve(endpoint)
    before = scrape(endpoint)

    with pytest.raises(KeptLocalError):  # identifiers sent to a cloud group by name: refused before any call
        await engine.acompletion(MRN, model=CLOUD)
    for group in ("t4-bio", "t4-generalist"):  # every local group of the biomedical route fails
        clean_standins[group].set_fault(error_rate=1.0, status=503)
    with pytest.raises(KeptLocalError):
        await engine.acompletion(BIO)
    after = scrape(endpoint)

    refusals = {"profile": "development"}
    assert delta(before, after, "biorouter_refusals_total", stage="before_call", **refusals) == 1
    assert delta(before, after, "biorouter_refusals_total", stage="after_call", **refusals) == 1
    assert delta(before, after, "biorouter_refusal_rules_total", rule="content:medical_record_number", **refusals) == 1
    assert delta(before, after, "biorouter_refusal_rules_total", rule="route:biomedical", **refusals) == 1
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_an_answer_from_a_fallback_group_is_counted(
    make_engine: Callable[..., BioRouter], endpoint: int, clean_standins: Any
) -> None:
    engine = make_engine()
    metrics.serve(endpoint)
    before = scrape(endpoint)
    clean_standins["t4-coder"].set_fault(error_rate=1.0, status=500)

    response = await engine.acompletion(CODE)
    after = scrape(endpoint)

    assert str(response.choices[0].message.content).startswith("[t4-generalist]")
    labels = {"profile": "development", "decided_group": "t4-coder", "served_group": "t4-generalist"}
    assert delta(before, after, "biorouter_fallbacks_total", **labels) == 1


@pytest.fixture
def priced_config(dev_stack: Any, tmp_path: Path) -> Path:
    """The stand-in config with a price on the cloud group (the stand-ins themselves are free)."""
    config = yaml.safe_load(Path(dev_stack.config_path).read_text())
    for deployment in config["model_list"]:
        if deployment["model_name"] == CLOUD:
            deployment["model_info"].update({"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002})
    priced = tmp_path / "priced.yaml"
    priced.write_text(yaml.safe_dump(config))
    return priced


async def test_budget_gauges_show_the_spend_against_the_limit(
    make_engine: Callable[..., BioRouter], priced_config: Path, endpoint: int, clean_standins: Any
) -> None:
    engine = make_engine(priced_config)  # a fresh in-memory ledger: nothing spent yet

    response = await engine.acompletion(CODE, max_tokens=50, metadata={"biorouter_task": "orchestration"})
    after = scrape(endpoint)

    cost = response._hidden_params["response_cost"]
    assert response._hidden_params["biorouter"].group == CLOUD
    assert cost > 0
    scope = {"scope": "profile:development", "period": "day"}
    assert sample(after, "biorouter_budget_limit_usd", **scope) == 1.0  # daily_budget_usd of the profile
    assert sample(after, "biorouter_budget_spent_usd", **scope) == pytest.approx(cost)


async def test_debug_routing_logs_one_json_line_per_decision_without_the_prompt(
    make_engine: Callable[..., BioRouter],
    clean_standins: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("BIOROUTER_DEBUG_ROUTING", "1")
    engine = make_engine()
    with caplog.at_level(logging.INFO, logger="biorouter.routing"):
        response = await engine.acompletion(MRN, litellm_call_id="req-mrn-1")

    [line] = [r.getMessage() for r in caplog.records if r.name == "biorouter.routing"]
    record = json.loads(line)
    assert record["request_id"] == "req-mrn-1"
    assert record["group"] == response._hidden_params["biorouter"].group
    assert record["local_only"] is True
    assert "content:medical_record_number" in record["local_only_rules"]
    assert {"scan", "classify", "budget", "decision"} <= set(record["timings_ms"])
    assert record["timings_ms"]["decision"] >= record["timings_ms"]["classify"]
    assert "00482913" not in line
    assert "referral" not in line
