"""Session counters and explicit profile switches."""

from __future__ import annotations

import logging
import threading

import pytest

from biorouter.serving.session import Session, response_cost


def test_requests_are_counted_per_task_and_group_with_cost() -> None:
    session = Session("t4_hybrid", selected="selected automatically")
    session.record(task="code_generation", group="t4-coder", ok=True, cost_usd=0.0)
    session.record(task="code_generation", group="deepseek-v3", ok=True, cost_usd=0.002)
    session.record(task="biomedical", group="t4-bio", ok=False, refused=True)

    summary = session.summary()
    assert (summary.totals.requests, summary.totals.errors, summary.totals.refused) == (3, 1, 1)
    assert summary.totals.cost_usd == pytest.approx(0.002)
    assert summary.by_task["code_generation"].requests == 2
    assert summary.by_group["deepseek-v3"].cost_usd == pytest.approx(0.002)
    assert summary.by_group["t4-bio"].refused == 1
    assert summary.profile == "t4_hybrid"


def test_a_switch_is_recorded_with_who_and_why_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    session = Session("t4_hybrid")
    with caplog.at_level(logging.WARNING, logger="biorouter.session"):
        entry = session.switch("h100_local", reason="H100 node back from maintenance", by="ops")
    assert (entry.previous, entry.profile, entry.by) == ("t4_hybrid", "h100_local", "ops")
    assert session.summary().profile == "h100_local"
    assert session.summary().switches == (entry,)
    assert "switched from 't4_hybrid' to 'h100_local' by ops: H100 node back from maintenance" in caplog.text


def test_a_switch_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        Session("t4_hybrid").switch("h100_local", reason="  ", by="ops")


def test_concurrent_recording_loses_no_count() -> None:
    session = Session("development")

    def work() -> None:
        for _ in range(500):
            session.record(task="t", group="g", ok=True, cost_usd=0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.summary().totals.requests == 4000
    assert session.summary().totals.cost_usd == pytest.approx(4.0)


def test_summary_line_names_profile_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    session = Session("development", selected="chosen explicitly")
    session.record(task="x", group="t4-generalist", ok=True)
    with caplog.at_level(logging.INFO, logger="biorouter.session"):
        session.log_summary()
    assert "biorouter session summary: profile 'development' (chosen explicitly)" in caplog.text
    assert "1 requests, 0 errors, 0 refused" in caplog.text
    assert "t4-generalist=1" in caplog.text


@pytest.mark.parametrize(
    ("source", "cost"), [({"response_cost": 0.25}, 0.25), ({"response_cost": None}, 0.0), ({}, 0.0)]
)
def test_response_cost_reads_litellms_figure(source: dict[str, object], cost: float) -> None:
    assert response_cost(source) == cost
