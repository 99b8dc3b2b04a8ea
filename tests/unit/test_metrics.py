"""biorouter's Prometheus metrics, their endpoint, and the debug routing log: real registry, real sockets."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import httpx
import prometheus_client
import pytest

from biorouter import metrics
from biorouter.costs.ledger import BudgetScope, ScopeUsage
from biorouter.errors import ConfigError
from biorouter.governance.request_view import view_request
from biorouter.governance.sensitivity import SensitivityDetector
from biorouter.routing.catalogue import Catalogue, Group
from biorouter.routing.decision import Decision, Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import ClassifierPolicy, Profile, Route
from biorouter.serving import decision_log
from biorouter.settings import MetricsSettings
from biorouter.testing.standin import free_port

MRN_PROMPT = "Summarise the discharge letter of MRN 12345678 in two sentences"

CATALOGUE = Catalogue(
    groups={
        name: Group(name=name, locality=locality, mode="chat", deployments=1)  # type: ignore[arg-type]
        for name, locality in (("t4-generalist", "local"), ("t4-coder", "local"), ("deepseek-v3", "cloud"))
    }
)
PROFILE = Profile(
    version=1,
    name="unit",
    description="hand-built for tests",
    classifier=ClassifierPolicy(min_confidence=0.3),
    default_route=Route(group="t4-generalist", fallbacks=("deepseek-v3",)),
    routes={"code_generation": Route(group="t4-coder", fallbacks=("deepseek-v3",))},
)


def value(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return found or 0.0


def decision(**update: object) -> Decision:
    base = Decision(profile="unit", mode="routed", group="t4-coder", task="code_generation", confidence=0.61)
    return base.model_copy(update=update)


@pytest.fixture
def no_server() -> Iterator[None]:
    metrics.stop()
    yield
    metrics.stop()


def test_a_decision_is_counted_under_its_profile_mode_task_and_group() -> None:
    labels = {
        "profile": "unit",
        "mode": "routed",
        "task": "code_generation",
        "group": "t4-coder",
        "task_source": "hint",
        "local_only": "false",
    }
    before = value("biorouter_decisions_total", **labels)
    metrics.record_decision(decision(), task_source="hint", seconds=0.0012)
    assert value("biorouter_decisions_total", **labels) == before + 1


def test_decision_latency_lands_in_the_millisecond_buckets() -> None:
    below_1ms = value("biorouter_decision_seconds_bucket", mode="default", le="0.001")
    below_2ms = value("biorouter_decision_seconds_bucket", mode="default", le="0.002")
    metrics.record_decision(decision(mode="default", task=None), task_source="none", seconds=0.0015)
    assert value("biorouter_decision_seconds_bucket", mode="default", le="0.001") == below_1ms
    assert value("biorouter_decision_seconds_bucket", mode="default", le="0.002") == below_2ms + 1


def test_a_refusal_counts_once_and_each_of_its_rules_once() -> None:
    rules = ("content:medical_record_number", "route:biomedical")
    before = value("biorouter_refusals_total", profile="unit", stage="before_call")
    before_rules = [value("biorouter_refusal_rules_total", profile="unit", rule=rule) for rule in rules]
    metrics.record_refusal("unit", rules, stage="before_call")
    assert value("biorouter_refusals_total", profile="unit", stage="before_call") == before + 1
    after_rules = [value("biorouter_refusal_rules_total", profile="unit", rule=rule) for rule in rules]
    assert after_rules == [count + 1 for count in before_rules]


def test_only_an_answer_from_another_group_counts_as_a_fallback() -> None:
    labels = {"profile": "unit", "decided_group": "t4-coder", "served_group": "t4-generalist"}
    before = value("biorouter_fallbacks_total", **labels)
    metrics.record_served("unit", "t4-coder", "t4-coder")
    metrics.record_served("unit", "t4-coder", None)
    assert value("biorouter_fallbacks_total", **labels) == before
    metrics.record_served("unit", "t4-coder", "t4-generalist")
    assert value("biorouter_fallbacks_total", **labels) == before + 1


def test_budget_gauges_follow_ledger_reads_and_settled_costs() -> None:
    scope = BudgetScope(key="profile:unit-gauges", period="day", limit_usd=2.0)
    metrics.record_budget_usage([ScopeUsage(scope=scope, spent_usd=0.5, reserved_usd=0.1)])
    assert value("biorouter_budget_spent_usd", scope="profile:unit-gauges", period="day") == 0.5
    assert value("biorouter_budget_limit_usd", scope="profile:unit-gauges", period="day") == 2.0
    metrics.record_budget_settled([scope], 0.25)
    metrics.record_budget_settled([scope], 0.0)
    assert value("biorouter_budget_spent_usd", scope="profile:unit-gauges", period="day") == 0.75


def test_a_failing_metric_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="biorouter.metrics"):
        metrics.record_decision(None, task_source="none", seconds=0.001)  # type: ignore[arg-type]
        metrics.record_budget_usage([object()])  # type: ignore[list-item]
    assert "record_decision failed; the request goes on" in caplog.text


def test_metrics_live_in_their_own_registry_not_the_global_one() -> None:
    metrics.record_decision(decision(), task_source="classifier", seconds=0.001)
    assert prometheus_client.REGISTRY.get_sample_value("biorouter_decisions_total", {"profile": "unit"}) is None
    global_names = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("biorouter_") for name in global_names)


def test_endpoint_serves_the_metrics_over_http(no_server: None) -> None:
    port = free_port()
    metrics.record_decision(decision(), task_source="classifier", seconds=0.001)
    assert metrics.serve(port) is True
    assert metrics.serving_port() == port
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    assert 'biorouter_decisions_total{group="t4-coder"' in response.text
    assert "biorouter_decision_seconds_bucket" in response.text
    assert metrics.serve(port) is True  # once per process: a second start is a no-op


def test_a_taken_port_is_a_warning_naming_it_and_routing_goes_on(
    no_server: None, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:  # another replica on this host
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="biorouter.metrics"):
            assert metrics.serve(port) is False
    assert f"cannot serve on 127.0.0.1:{port}" in caplog.text
    assert "BIOROUTER_METRICS_PORT" in caplog.text
    assert metrics.serving_port() is None
    metrics.record_decision(decision(), task_source="classifier", seconds=0.001)  # recording still works


def test_no_port_means_no_endpoint(no_server: None) -> None:
    assert metrics.serve(None) is False
    assert metrics.serving_port() is None


def test_metrics_port_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = MetricsSettings(port=9464)
    assert settings.resolved_port() == 9464
    monkeypatch.setenv("BIOROUTER_METRICS_PORT", "9500")
    assert settings.resolved_port() == 9500
    monkeypatch.setenv("BIOROUTER_METRICS_PORT", "0")
    assert settings.resolved_port() is None
    monkeypatch.setenv("BIOROUTER_METRICS_PORT", "http")
    with pytest.raises(ConfigError, match=r"BIOROUTER_METRICS_PORT: must be a port number \(1-65535\), not 'http'"):
        settings.resolved_port()
    assert MetricsSettings().port is None  # off by default


def sensitive_decision() -> Decision:
    """The Decision for the MRN prompt, from the real detector and decide()."""
    view = view_request([{"role": "user", "content": MRN_PROMPT}])
    rules = SensitivityDetector.build().scan(view.texts)
    assert rules == ("medical_record_number",)
    signals = Signals(
        requested_model="auto",
        text_sha256=view.text_sha256,
        task="code_generation",
        confidence=0.42,
        scores={"code_generation": 0.42, "documentation": 0.31, "intent_parsing": 0.1, "safety": 0.01},
        sensitive_rules=rules,
    )
    return decide(signals, PROFILE, CATALOGUE)


def test_debug_line_is_one_json_object_without_the_prompt(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BIOROUTER_DEBUG_ROUTING", "1")
    chosen = sensitive_decision()
    with caplog.at_level(logging.INFO, logger="biorouter.routing"):
        decision_log.log_decision(
            chosen, request_id="req-1", task_source="classifier", timings={"scan": 0.0002, "decision": 0.0031}
        )
    [line] = [r.getMessage() for r in caplog.records if r.name == "biorouter.routing"]
    assert "\n" not in line
    record = json.loads(line)
    assert record["request_id"] == "req-1"
    assert (record["profile"], record["mode"], record["group"]) == ("unit", "routed", "t4-coder")
    assert record["local_only_rules"] == ["content:medical_record_number"]
    assert record["top_scores"] == {"code_generation": 0.42, "documentation": 0.31, "intent_parsing": 0.1}
    assert record["timings_ms"] == {"scan": 0.2, "decision": 3.1}
    assert "12345678" not in line
    assert "MRN" not in line
    assert "discharge" not in line


def test_classifier_error_text_is_kept_out_of_the_debug_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An embeddings server's error body may echo the request text; the reason keeps only its kind.
    monkeypatch.setenv("BIOROUTER_DEBUG_ROUTING", "1")
    signals = Signals(requested_model="auto", classifier_error=f"endpoint answered HTTP 400: {MRN_PROMPT}")
    chosen = decide(signals, PROFILE, CATALOGUE)
    assert MRN_PROMPT in " ".join(chosen.reasons)
    with caplog.at_level(logging.INFO, logger="biorouter.routing"):
        decision_log.log_decision(chosen, request_id="req-2", task_source="none", timings={"decision": 0.001})
    [line] = [r.getMessage() for r in caplog.records if r.name == "biorouter.routing"]
    assert "12345678" not in line
    assert json.loads(line)["reasons"] == ["classifier unavailable (error text omitted): default route"]


def test_no_debug_line_unless_asked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="biorouter.routing"):
        decision_log.log_decision(decision(), request_id="req-3", task_source="classifier", timings={})
    assert not [r for r in caplog.records if r.name == "biorouter.routing"]
