"""Latency and cost of each orchestration strategy against ``single``, on stand-in upstreams.

One in-process ``BioRouter`` (the development profile) over three stand-ins with fixed latencies,
so the figures show what each strategy does with them rather than a model's speed:

    t4-coder 120 ms (local, $0)   t4-generalist 60 ms (local, $0)   deepseek-v3 250 ms (cloud, priced)

Requests take the ``code_generation`` route (chain t4-coder, t4-generalist, deepseek-v3) by task
hint and ask for a strategy in ``metadata.biorouter_strategy`` (the development profile allows
race of 2, ensemble of 3 and cascade). The cloud stand-in is priced like the budget tests
($0.00001 per prompt token, $0.00002 per completion token), so LiteLLM computes a real cost for it.

Scenarios: single (t4-coder); race (t4-coder vs t4-generalist); ensemble of 3 (all, normalised
vote); cascade whose first answer passes; cascade whose first answer is empty (escalates once);
and, for scale, single on the ``orchestration`` route (deepseek-v3 first): one cloud call's cost.
Each figure is the median (and p90) over the requests of a scenario, measured one after the other
at concurrency 1; "calls" counts the upstream calls the stand-ins saw per request.

Run: ``python bench/strategies.py`` (about a minute; ``--quick`` for a few requests each).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, percentile

from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings
from biorouter.testing.devstack import standin_config
from biorouter.testing.standin import StandInFleet
from biorouter.testing.upstream import Fault

LATENCY_MS = {"t4-coder": 120, "t4-generalist": 60, "deepseek-v3": 250}
PRICES = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002}
TEXT = "write a python function that reverses the order of words in a sentence"


@dataclass(frozen=True)
class Scenario:
    name: str
    strategy: str
    empty_answer_from: str | None = None  # a stand-in answering "" (a failed check)
    task: str = "code_generation"


SCENARIOS = (
    Scenario("single", "single"),
    Scenario("race (2)", "race"),
    Scenario("ensemble (3)", "ensemble"),
    Scenario("cascade, first passes", "cascade"),
    Scenario("cascade, escalates once", "cascade", empty_answer_from="t4-coder"),
    Scenario("single, cloud route", "single", task="orchestration"),  # the cost of one cloud call, for scale
)


@dataclass
class Result:
    scenario: Scenario
    latencies_ms: list[float]
    costs_usd: list[float]
    calls: float
    winners: set[str]


def cost_of(response: Any) -> float:
    decision = response._hidden_params["biorouter"]
    if decision.strategy_outcome is not None:
        return float(decision.strategy_outcome.cost_usd)
    return float(response._hidden_params.get("response_cost") or 0.0)


def winner_of(response: Any) -> str:
    decision = response._hidden_params["biorouter"]
    outcome = decision.strategy_outcome
    return str(outcome.winner) if outcome is not None else str(response.choices[0].message.content).split("]")[0][1:]


async def run(engine: BioRouter, fleet: StandInFleet, scenario: Scenario, requests: int) -> Result:
    for standin in fleet:
        standin.set_answer(None)
    if scenario.empty_answer_from:
        fleet[scenario.empty_answer_from].set_answer("")
    metadata = {"biorouter_task": scenario.task, "biorouter_strategy": scenario.strategy}
    await engine.acompletion([{"role": "user", "content": TEXT}], metadata=metadata)  # warm-up, not counted
    before = sum(s.stats()["chat_requests"] for s in fleet)
    latencies, costs, winners = [], [], set()
    for n in range(requests):
        messages = [{"role": "user", "content": f"{TEXT} (request {n})"}]
        started = time.perf_counter()
        response = await engine.acompletion(messages, metadata=metadata)
        latencies.append((time.perf_counter() - started) * 1000)
        costs.append(cost_of(response))
        winners.add(winner_of(response))
    calls = (sum(s.stats()["chat_requests"] for s in fleet) - before) / requests
    return Result(scenario, latencies, costs, calls, winners)


def table(results: list[Result]) -> str:
    base = results[0]
    base_ms = statistics.median(base.latencies_ms)
    base_cost = statistics.median(base.costs_usd)
    lines = [
        f"{'strategy':<26} {'p50 ms':>8} {'p90 ms':>8} {'vs single':>9} {'calls':>6} {'cost/request':>13} "
        f"{'vs single':>10}  winner(s)"
    ]
    for r in results:
        p50 = statistics.median(r.latencies_ms)
        cost = statistics.median(r.costs_usd)
        ratio = f"{cost / base_cost:.1f}x" if base_cost > 0 else ("=" if cost == 0 else "+" + f"${cost:.6f}")
        lines.append(
            f"{r.scenario.name:<26} {p50:8.1f} {percentile(r.latencies_ms, 0.9):8.1f} {p50 / base_ms:8.2f}x "
            f"{r.calls:6.1f} {'$' + format(cost, '.6f'):>13} {ratio:>10}  {', '.join(sorted(r.winners))}"
        )
    return "\n".join(lines)


async def main_async(requests: int) -> int:
    fleet = StandInFleet(
        list(LATENCY_MS), faults={name: Fault(latency_ms=ms) for name, ms in LATENCY_MS.items()}
    ).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = yaml.safe_load((ROOT / "litellm_config" / "config.yaml").read_text(encoding="utf-8"))
            config = standin_config(base, {name: fleet[name].api_base for name in LATENCY_MS})
            for deployment in config["model_list"]:
                if deployment["model_name"] == "deepseek-v3":
                    deployment["model_info"].update(PRICES)
            path = Path(folder) / "litellm.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            engine = BioRouter.from_settings(load_settings(ROOT), profile="development", litellm_config=path)
            results = [await run(engine, fleet, scenario, requests) for scenario in SCENARIOS]
    finally:
        fleet.stop()
    print(f"stand-in latencies: {', '.join(f'{g} {ms} ms' for g, ms in LATENCY_MS.items())}; deepseek-v3 priced")
    print(f"{requests} requests per strategy, concurrency 1, in-process (BioRouter.acompletion)\n")
    print(table(results))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per strategy (default 30)")
    parser.add_argument("--quick", action="store_true", help="5 requests per strategy")
    args = parser.parse_args()
    return asyncio.run(main_async(5 if args.quick else args.requests))


if __name__ == "__main__":
    sys.exit(main())
