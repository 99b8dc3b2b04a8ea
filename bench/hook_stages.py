"""Where the proxy hook's event-loop CPU goes, stage by stage, on the proxy bench's request mix.

``bench/proxy_overhead.py`` measures the hook inside a real ``litellm`` proxy: how much CPU a request
costs over a pass-through hook, and how much of it is on the event-loop thread (the bottleneck
under load: uvicorn serves every request there). This bench answers the next question, which
stage of the decision that loop time goes to, in one process and without a proxy around it:

- **whole hook**: ``BiorouterProxyHook.async_pre_call_hook`` as the proxy calls it, then the
  response-headers and success hooks with the same request, 32 requests in flight (the
  classifier batches them as it does under load);
- **each stage alone**: the pieces of one decision called one at a time on fresh requests
  (request view and checks, sensitivity scan, classification with its lexical blend, complexity,
  prompt token count, budget view, ``decide()``, decision record and log line, after-call hooks).

CPU is the calling thread's (``time.thread_time``), so the encoder's own thread is left out,
as the proxy bench's "loop ms/req" column leaves it out; so are NER scans, which run in worker
threads. The stages' sum and the whole hook differ by the glue between them (asyncio, hook
bookkeeping) and by what batching saves under concurrency. Request texts are
``bench/proxy_overhead.py``'s (short chat lines, requests with context, 4k-16k characters of
pasted code; every one unique, so no cache answers). Profile ``t4_hybrid``; the encoder is an
embeddings stand-in on loopback by default (``--encoder endpoint``, the production topology for a
busy proxy) or the packaged MiniLM in this process (``--encoder in-process``).

Prints figures; gates nothing. Run: ``python bench/hook_stages.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from common import ROOT
from proxy_overhead import PROFILE, Prompt, PromptSource, endpoint_home

from biorouter.classify.utterances import load_utterances
from biorouter.costs.prices import count_prompt_tokens
from biorouter.governance.request_view import check_request, view_request
from biorouter.routing.policy import decide
from biorouter.routing.profiles import load_profile
from biorouter.serving.adapter import gather_signals, prompt_tokens, scan
from biorouter.settings import load_settings
from biorouter.testing.devstack import standin_config
from biorouter.testing.standin import StandIn
from biorouter.testing.upstream import Fault

Item = TypeVar("Item")


def _build_hook(encoder: str, run_dir: Path, standin: StandIn) -> Any:
    """The proxy hook over the stand-in's deployments, built as the proxy builds it (engine warmed)."""
    settings = load_settings(ROOT)
    profile = load_profile(settings.profiles_path / f"{PROFILE}.yaml")
    base = yaml.safe_load(settings.litellm_config_path.read_text(encoding="utf-8")) or {}
    config = standin_config(base, {group: standin.api_base for group in sorted(profile.groups())})
    home = ROOT if encoder == "in-process" else endpoint_home(run_dir, standin.api_base)
    os.environ.update(
        {"BIOROUTER_HOME": str(home), "BIOROUTER_PROFILE": PROFILE, "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl")}
    )
    from biorouter.proxy import hook as hook_module

    hook_module._proxy_model_list = lambda: config["model_list"]  # the proxy's router is not running here
    return hook_module.BiorouterProxyHook(warmup=False)


def _request(prompt: Prompt, serial: int) -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [{"role": "user", "content": prompt.text}],
        "metadata": {},
        "litellm_call_id": f"bench-{serial}",
    }


async def _after_call(hook: Any, data: dict[str, Any]) -> None:
    """The response-headers and success hooks, with the fields LiteLLM passes them for a served request."""
    await hook.async_post_call_response_headers_hook(data, None, object())
    now = datetime.now(UTC)
    kwargs = {
        "litellm_call_id": data["litellm_call_id"],
        "litellm_params": {"metadata": {**data["metadata"], "model_group": data["model"]}, "model_info": {}},
        "response_cost": 0.0,
    }
    await hook.async_log_success_event(kwargs, None, now - timedelta(milliseconds=5), now)


async def whole_hook(hook: Any, prompts: Sequence[Prompt], concurrency: int) -> float:
    """Event-loop CPU ms per request of the pre-call hook plus the after-call hooks, ``concurrency`` in flight."""
    queue = list(enumerate(prompts))

    async def worker() -> None:
        while queue:
            serial, prompt = queue.pop()
            data = await hook.async_pre_call_hook(None, None, _request(prompt, serial), "acompletion")
            await _after_call(hook, data)

    started = time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return 1000 * (time.thread_time() - started) / len(prompts)


async def stage_costs(hook: Any, source: PromptSource, count: int) -> list[tuple[str, float]]:
    """Each stage alone, one request at a time, on ``count`` fresh requests each: CPU ms per request."""
    engine = await hook.engine()
    state = engine.state
    profile, classifier, detector = state.profile, state.classifier, state.detector
    lexical = getattr(classifier, "_lexical", None)  # built by the warm-up's first blended classification

    def view_of(prompt: Prompt) -> Any:
        return view_request(_request(prompt, 0)["messages"])

    async def request_view(prompt: Prompt) -> None:
        data = _request(prompt, 0)
        check_request(view_request(data["messages"]), "auto", data, None)

    async def sensitivity(prompt: Prompt) -> None:
        await scan(detector, view_of(prompt))

    async def classification(prompt: Prompt) -> None:
        await classifier.aclassify(view_of(prompt).text)

    async def lexical_model(prompt: Prompt) -> None:
        if lexical is not None:
            lexical.probabilities(view_of(prompt).text)

    results = [
        (name, await _timed(stage, source.take(count)))
        for name, stage in (
            ("request view and checks", request_view),
            ("sensitivity scan (on the loop; NER texts go to a thread)", sensitivity),
            ("classification (its part on the loop)", classification),
            ("  of which the lexical model", lexical_model),
        )
    ]

    # The later stages take the signals and decision of a request: computed first, not timed.
    above = engine._count_tokens_above(None, state)
    prepared = []
    for prompt in source.take(count):
        data = _request(prompt, 0)
        view = view_of(prompt)
        signals = await gather_signals(view, "auto", classifier, detector=detector)
        budget, _ = await engine.budget.view(profile, signals, data["messages"], data)
        prepared.append((prompt, data, view, signals, decide(signals, profile, state.catalogue, budget)))

    async def complexity(prompt: Prompt, data: Any, view: Any, signals: Any, decision: Any) -> None:
        await engine._with_complexity(view.text, signals, state)

    async def tokens(prompt: Prompt, data: Any, view: Any, signals: Any, decision: Any) -> None:
        if prompt_tokens(view, data["messages"], above) is None:  # as the decision does: then the budget counts
            count_prompt_tokens(data["messages"])

    async def budget_and_decide(prompt: Prompt, data: Any, view: Any, signals: Any, decision: Any) -> None:
        counted = signals.model_copy(update={"prompt_tokens": 1})  # the count is the stage above
        budget, _ = await engine.budget.view(profile, counted, data["messages"], data)
        decide(counted, profile, state.catalogue, budget)

    async def record_and_log(prompt: Prompt, data: Any, view: Any, signals: Any, decision: Any) -> None:
        engine._observe(decision, signals, {"decision": 0.001}, data)
        logging.getLogger("biorouter.proxy").info(decision.log_line())

    for name, stage in (
        ("complexity (routes with tiers)", complexity),
        ("prompt token count", tokens),
        ("budget view and decide()", budget_and_decide),
        ("decision metrics and log line", record_and_log),
    ):
        results.append((name, await _timed(lambda item, stage=stage: stage(*item), prepared)))

    spent = 0.0
    after = source.take(count)
    for serial, prompt in enumerate(after):
        data = await hook.async_pre_call_hook(None, None, _request(prompt, serial), "acompletion")
        started = time.thread_time()
        await _after_call(hook, data)
        spent += time.thread_time() - started
    results.append(("after-call hooks (headers, success, budget settle)", 1000 * spent / len(after)))
    return results


async def _timed(run: Callable[[Item], Awaitable[None]], items: Sequence[Item]) -> float:
    """CPU ms per item of ``run`` over ``items``, one at a time."""
    started = time.thread_time()
    for item in items:
        await run(item)
    return 1000 * (time.thread_time() - started) / len(items)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; each figure is the median")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight for the whole hook")
    parser.add_argument("--encoder", choices=("endpoint", "in-process"), default="endpoint")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


async def run(args: argparse.Namespace, hook: Any) -> None:
    settings = load_settings(ROOT)
    source = PromptSource(load_utterances(settings.utterances_path), args.seed)
    engine = await hook.engine()
    engine.detector.warm()
    await whole_hook(hook, source.take(200), args.concurrency)  # warm-up: encoder batches, caches, the NER model
    wholes: list[float] = []
    stages: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        wholes.append(await whole_hook(hook, source.take(args.requests), args.concurrency))
        for name, value in await stage_costs(hook, source, args.requests // 2):
            stages.setdefault(name, []).append(value)
        print(f"  round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    whole = statistics.median(wholes)
    print(
        f"\nevent-loop CPU per request, profile {PROFILE}, encoder {args.encoder} (median of {args.rounds} rounds; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  {'stage':<58}{'ms/req':>8}{'share':>8}")
    total = 0.0
    for name, values in stages.items():
        value = statistics.median(values)
        total += 0 if name.startswith("  ") else value
        print(f"  {name:<58}{value:>8.3f}{value / whole:>8.0%}")
    print(f"  {'sum of the stages':<58}{total:>8.3f}{total / whole:>8.0%}")
    print(
        f"  {f'whole hook, {args.concurrency} in flight (rounds: ' + ', '.join(f'{v:.2f}' for v in wholes) + ')':<58}"
        f"{whole:>8.3f}{1:>8.0%}"
    )
    print(
        "  (the stages alone, one request at a time; the whole hook batches the encoder's calls and adds the glue "
        "between stages)"
    )


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="hook-stages-") as tmp:
        run_dir = Path(tmp)
        standin = StandIn("bench", fault=Fault(), log_path=run_dir / "standin.log")  # answers at once
        standin.start()
        try:
            hook = _build_hook(args.encoder, run_dir, standin)
            with open(os.devnull, "w", encoding="utf-8") as devnull:  # the decision lines are timed, not printed
                for handler in logging.getLogger("biorouter").handlers:
                    if isinstance(handler, logging.StreamHandler):
                        handler.setStream(devnull)
                asyncio.run(run(args, hook))
        finally:
            standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
