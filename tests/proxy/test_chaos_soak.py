"""Chaos soak through the session's proxy: random upstream failures, every request answered, no leak.

The short form (300 requests at concurrency 16, about 20 s) runs with the default suite; the
issue's full form (5,000 at 32) is ``-m slow`` here or ``python bench/chaos_soak.py``. The fault
model and the bars are those of :mod:`biorouter.testing.chaos`; the driver heals every stand-in
(faults cleared, stopped processes started again) before the test ends.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from biorouter.routing.profiles import load_profile
from biorouter.testing.chaos import PROMPTS, SENSITIVE_TEXT, ChaosDriver, Incident, route_chains, soak

from ..conftest import ROOT

pytestmark = pytest.mark.usefixtures("clean_standins")

PROFILE = load_profile(ROOT / "profiles" / "development.yaml")


def test_the_cloud_canary_counts_a_request_carrying_an_identifier(dev_stack: Any) -> None:
    """Without this, ``canary_hits == 0`` in the soak would prove nothing."""
    cloud = dev_stack.fleet["deepseek-v3"]
    cloud.set_canary(SENSITIVE_TEXT.pattern)
    try:
        for text in ("summarise the visit of MRN: 00482913", "plot the reads of SMP-004217", "hello"):
            body = {
                "model": "deepseek-v3",
                "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": text}],
            }
            httpx.post(cloud.api_base + "/chat/completions", json=body, timeout=10, trust_env=False)
        assert cloud.stats()["canary_hits"] == 2
    finally:
        cloud.set_canary(None)


def test_no_incident_takes_every_group_of_a_route_chain(dev_stack: Any) -> None:
    chains = route_chains(PROFILE, ["t4-coder", "t4-generalist", "t4-math", "t4-bio", "deepseek-v3"], PROMPTS)
    assert ["t4-coder", "t4-generalist", "deepseek-v3"] in chains
    driver = ChaosDriver(dev_stack.fleet, chains)
    driver.active = {"t4-generalist": Incident("t4-generalist", "down", until=math.inf)}
    assert not driver.allowed("t4-math")  # math falls back to the generalist only
    assert not driver.allowed("t4-bio")  # so do biomedical requests
    assert not driver.allowed("deepseek-v3")  # the default route is generalist -> deepseek
    assert driver.allowed("t4-coder")  # code generation still has deepseek-v3
    driver.active = {}
    driver.settling = {"t4-generalist": math.inf}  # healed, but not long enough ago
    assert not driver.allowed("t4-math")


def _check(report: Any) -> None:
    print("\n".join(report.lines()))
    assert report.problems() == []
    assert sum(report.incidents.values()) >= 3  # chaos happened
    assert report.local_only > 0
    assert report.cloud_allowed > 0


def test_short_chaos_soak_answers_everything_without_leaks_or_restarts(dev_stack: Any) -> None:
    _check(soak(dev_stack, PROFILE, total=300, concurrency=16, seed=1))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_full_chaos_soak(dev_stack: Any) -> None:
    _check(soak(dev_stack, PROFILE, total=5_000, concurrency=32, seed=2))
