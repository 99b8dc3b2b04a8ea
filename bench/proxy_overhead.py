"""What the biorouter hook adds to a LiteLLM proxy request: latency at concurrency 1, throughput and CPU at 32.

The promise is routing that costs less than the network hop it decides, so the hook is measured
against the same proxy without it. Three paths to one upstream, in one run:

- **direct**: the stand-in upstream itself (``POST /v1/chat/completions``), the floor;
- **pass-through**: a ``litellm`` proxy whose only callback is
  :mod:`biorouter.testing.passthrough` (sets ``model`` to one fixed group, nothing else; it freezes
  the start-up heap out of garbage collection as biorouter's hook does, so the comparison does not
  credit the hook with that saving of LiteLLM's; ``--proxy-env BIOROUTER_GC_FREEZE=0`` turns both off);
- **biorouter**: the same ``litellm`` proxy with the real hook, ``"model": "auto"``, exactly as
  production serves it (``t4_hybrid``: every route one upstream call; ``BIOROUTER_WARMUP=1``, the
  shipped classifier);
- **strategies**: the same hook on the ``development`` profile, whose cascade and ensemble routes
  call LiteLLM two or three times per request by design (``--no-strategies`` skips it).

The cost table separates the two: upstream calls per request (the stand-in counts them) and proxy
CPU per request, so the hook's own cost on single-call routes is not confused with the calls a
strategy makes. Its last column is the CPU of the proxy's event-loop thread alone: uvicorn serves
every request on it, so it is the bottleneck under load (the throughput ratio follows the two
proxies' loop CPU), while the encoder, long or NER scans and LiteLLM's thread pool run beside it.
The workers table then starts pass-through and biorouter again with
``--workers`` processes each (default 2; a real ``redis-server`` holds the shared ledger) and
compares throughput and CPU per request with the one-worker figures.

Both proxies get the same config (``litellm_config/config.yaml`` with every group of the
development profile pointed at one stand-in, :func:`~biorouter.testing.devstack.standin_config`)
except the ``callbacks`` line. The stand-in answers at once (``--upstream-latency-ms``, default 0)
so the figures are the proxy's own cost, not a model's.

Fairness on a small machine: client, stand-in and proxy share the CPU, so the two proxies are
never loaded at the same time. Both stay up for the whole run (a start costs ~6 s) and the paths
take turns: every round measures each path in a rotated order, and every figure is the median
over rounds; the ratios are computed per round (same minute, same machine state) before taking
the median. The idle proxy's CPU use while the other one is measured is printed, to show that
keeping it up does not bias the other. Every request text is unique (a serial number at its end),
so the classifier's query cache never hits: the hook is measured on its slow path. Texts come
from ``utterances/*.txt``: short chat lines,
medium requests with context, long pasted code with the question at the end.

``--encoder endpoint`` measures the production topology for a busy proxy: the classifier embeds
through an embeddings server (the stand-in's ``/v1/embeddings``), so the proxy's CPU is the
routing alone (the stand-in's hash vectors make the routes arbitrary; every route is still one
upstream call).

Prints figures and the targets beside them; gates nothing (exit 1 only if requests failed).
Run: ``python bench/proxy_overhead.py`` (about 3 minutes; ``--quick`` about 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from common import ROOT, accuracy_line, percentile

from biorouter.classify.classifier import TaskClassifier
from biorouter.classify.utterances import load_utterances
from biorouter.routing.profiles import load_profile
from biorouter.settings import load_settings
from biorouter.testing.devstack import ProxyProcess, standin_config
from biorouter.testing.passthrough import GROUP_ENV
from biorouter.testing.redis import RedisServer
from biorouter.testing.standin import StandIn
from biorouter.testing.upstream import Fault

PROFILE = "t4_hybrid"  # production-like: every route one call (development's cascade/ensemble call 2-3 times)
PASSTHROUGH_CALLBACK = "biorouter.testing.passthrough.passthrough_handler_instance"
CODE_LINE = "    reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30 and not r.is_duplicate]\n"
SHAPES = ("short", "medium", "long")
STRATEGY_PROFILE = "development"  # its cascade and ensemble routes call LiteLLM 2-3 times per request
LABELS = {
    "direct": "direct to the stand-in",
    "pass-through": "litellm + pass-through hook",
    "biorouter": "litellm + biorouter hook",
    "strategies": "biorouter, strategy routes",
}
TARGET_EXTRA_CPU_MS = 3.0
TARGET_OVERHEAD_MS = 10.0
TARGET_THROUGHPUT_RATIO = 0.80
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEEPALIVE_S = 3.0  # below uvicorn's default timeout_keep_alive (5 s), which the litellm CLI keeps


def _stat_fields(pid: int | str) -> list[str]:
    """``/proc/PID/stat`` after the command name (field 3 onwards); empty if the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_cpu(pid: int | str) -> float:
    """User + system CPU seconds of one process so far, all its threads included (0 if it is gone)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every live process below it (a proxy's workers, or this bench's children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)):
            parents[int(entry)] = int(fields[1])
    ours, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in ours]
        ours.update(children)
        frontier.extend(children)
    return sum(process_cpu(pid) for pid in ours)


def own_cpu() -> float:
    """CPU seconds of this process and every process it started (stand-in, proxies)."""
    return tree_cpu(os.getpid())


def machine_busy_cpu() -> float:
    """Non-idle CPU seconds of the whole machine so far, all cores (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK_TICKS  # minus idle and iowait; guest is in user


class BenchProxy(ProxyProcess):
    """A :class:`ProxyProcess` whose CPU time can be read (its pid is the uvicorn server's)."""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the proxy so far (all its threads and worker processes, the encoder's included)."""
        if self._proc is None:
            return 0.0
        return tree_cpu(self._proc.pid) if self.workers > 1 else process_cpu(self._proc.pid)

    def loop_cpu_seconds(self) -> float:
        """CPU time of the proxy's event-loop thread (uvicorn serves on the main thread); NaN with workers."""
        if self._proc is None or self.workers > 1:
            return float("nan")
        pid = self._proc.pid
        return process_cpu(f"{pid}/task/{pid}")  # a thread's stat file has the process's layout


@dataclass(frozen=True)
class Prompt:
    """One request text and its shape (short, medium or long), for per-shape medians."""

    shape: str
    text: str


@dataclass
class Target:
    """One way to get an answer: a URL, its headers, and the proxy behind it (None: the stand-in)."""

    name: str
    url: str
    model: str
    headers: Mapping[str, str]
    proxy: BenchProxy | None = None
    calls: Callable[[], int] | None = None  # upstream chat calls so far (the stand-in's counter)


@dataclass
class Sample:
    """What one phase of one path measured."""

    latencies_ms: list[float] = field(default_factory=list)
    shapes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    groups: Counter[str] = field(default_factory=Counter)
    local_only: int = 0
    proxy_cpu_s: float = 0.0
    loop_cpu_s: float = float("nan")  # of it, the event-loop thread's (the rest: encoder, scans, LiteLLM's pools)
    upstream_calls: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def p50(self, shape: str | None = None) -> float:
        values = [v for v, s in zip(self.latencies_ms, self.shapes, strict=True) if shape in (None, s)]
        return statistics.median(values) if values else float("nan")

    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99) if self.latencies_ms else float("nan")

    def cpu_ms_per_request(self) -> float:
        return 1000 * self.proxy_cpu_s / self.ok if self.ok else float("nan")

    def loop_ms_per_request(self) -> float:
        return 1000 * self.loop_cpu_s / self.ok if self.ok else float("nan")

    def calls_per_request(self) -> float:
        return self.upstream_calls / self.ok if self.ok else float("nan")


class PromptSource:
    """Request texts from the project's utterances, each one unique (so no cache answers for the hook)."""

    def __init__(self, utterances: Mapping[str, Sequence[str]], seed: int) -> None:
        self._pool = [line for lines in utterances.values() for line in lines]
        self._rng = random.Random(seed)
        self._serial = 0

    def take(self, count: int) -> list[Prompt]:
        prompts = []
        for index in range(count):
            self._serial += 1
            base = self._rng.choice(self._pool)
            shape = SHAPES[index % len(SHAPES)]
            if shape == "short":
                text = base
            elif shape == "medium":
                context = self._rng.choice(self._pool)
                text = f"Context: we sequence 48 samples per run on a NovaSeq. {context} Anyway: {base}"
            else:  # ~4k-16k characters of pasted code, the question at the end
                text = "```python\n" + CODE_LINE * self._rng.randint(40, 160) + "```\n" + base
            prompts.append(Prompt(shape, f"{text} (ref {self._serial})"))
        return prompts


async def _one(session: aiohttp.ClientSession, target: Target, prompt: Prompt, sample: Sample) -> None:
    body = {"model": target.model, "messages": [{"role": "user", "content": prompt.text}]}
    start = time.perf_counter()
    try:
        async with session.post(target.url, json=body, headers=dict(target.headers)) as response:
            await response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                sample.errors[f"HTTP {response.status}"] += 1
                return
            group = response.headers.get("x-biorouter-group")
            if group is not None:
                sample.groups[group] += 1
                sample.local_only += response.headers.get("x-biorouter-local-only") == "true"
    except (aiohttp.ClientError, TimeoutError) as e:
        sample.errors[type(e).__name__] += 1
        return
    sample.latencies_ms.append(elapsed)
    sample.shapes.append(prompt.shape)


async def run_phase(
    session: aiohttp.ClientSession, target: Target, prompts: Sequence[Prompt], concurrency: int
) -> Sample:
    """Send ``prompts`` with ``concurrency`` requests in flight; the proxy's CPU time is read around it."""
    sample = Sample()
    queue = list(reversed(prompts))

    async def worker() -> None:
        while queue:
            await _one(session, target, queue.pop(), sample)

    cpu_before = target.proxy.cpu_seconds() if target.proxy else 0.0
    loop_before = target.proxy.loop_cpu_seconds() if target.proxy else float("nan")
    calls_before = target.calls() if target.calls else 0
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.seconds = time.perf_counter() - start
    sample.proxy_cpu_s = (target.proxy.cpu_seconds() if target.proxy else 0.0) - cpu_before
    sample.loop_cpu_s = (target.proxy.loop_cpu_seconds() if target.proxy else float("nan")) - loop_before
    sample.upstream_calls = (target.calls() if target.calls else 0) - calls_before
    return sample


@dataclass
class Results:
    """Per path, per round: the concurrency-1 and concurrency-N samples; plus idle CPU of the idle proxy."""

    serial: dict[str, list[Sample]] = field(default_factory=dict)
    loaded: dict[str, list[Sample]] = field(default_factory=dict)
    idle_cpu_s: float = 0.0
    idle_wall_s: float = 0.0
    foreign: list[tuple[float, float]] = field(default_factory=list)  # per phase: others' CPU s, wall s


async def open_clients(sessions: AsyncExitStack, targets: Sequence[Target], concurrency: int) -> dict[str, Any]:
    """One aiohttp session per path, its pool as large as the concurrency, closed with ``sessions``."""
    timeout = aiohttp.ClientTimeout(total=120)
    return {
        t.name: await sessions.enter_async_context(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE_S),
                timeout=timeout,
            )
        )
        for t in targets
    }


async def measure(targets: Sequence[Target], source: PromptSource, args: argparse.Namespace) -> Results:
    results = Results({t.name: [] for t in targets}, {t.name: [] for t in targets})
    proxies = [t.proxy for t in targets if t.proxy is not None]
    async with AsyncExitStack() as sessions:
        # A path's pool sits idle while the others are measured; uvicorn closes idle connections
        # after 5 s, so the client drops them first (3 s) rather than race the server's close.
        clients = await open_clients(sessions, targets, args.concurrency)
        for target in targets:  # warm-up: connections, LiteLLM's caches, the encoder's first calls
            await run_phase(clients[target.name], target, source.take(30), 1)
            await run_phase(clients[target.name], target, source.take(2 * args.concurrency), args.concurrency)
        for round_index in range(args.rounds):
            order = [targets[(round_index + i) % len(targets)] for i in range(len(targets))]
            serial_prompts = source.take(args.requests)
            loaded_prompts = source.take(args.throughput_requests)
            for prompts, concurrency, store in (
                (serial_prompts, 1, results.serial),
                (loaded_prompts, args.concurrency, results.loaded),
            ):
                for target in order:
                    idle = [p for p in proxies if p is not target.proxy]
                    idle_before = sum(p.cpu_seconds() for p in idle)
                    busy_before, own_before = machine_busy_cpu(), own_cpu()
                    sample = await run_phase(clients[target.name], target, prompts, concurrency)
                    foreign = (machine_busy_cpu() - busy_before) - (own_cpu() - own_before)
                    results.foreign.append((max(0.0, foreign), sample.seconds))
                    results.idle_cpu_s += sum(p.cpu_seconds() for p in idle) - idle_before
                    results.idle_wall_s += sample.seconds * len(idle)
                    store[target.name].append(sample)
            print(f"  round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return results


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _rounds(values: Sequence[float], fmt: str) -> str:
    return ", ".join(format(v, fmt) for v in values)


def _cpu_cell(name: str, samples: Sequence[Sample]) -> str:
    """Median proxy CPU ms per request, or a dash for the direct path (no proxy to read)."""
    return f"{'-':>18}" if name == "direct" else f"{_median([s.cpu_ms_per_request() for s in samples]):>18.2f}"


def report(results: Results, targets: Sequence[Target], args: argparse.Namespace) -> int:
    """Print the tables, the ratios against their targets and the decision mix; the failed-request count."""
    names = [t.name for t in targets]
    label = LABELS
    print(f"\nconcurrency 1, {args.requests} requests per path per round (median over {args.rounds} rounds)")
    print(f"  {'path':<30}{'p50 ms':>9}{'p99 ms':>9}{'short':>9}{'medium':>9}{'long':>9}{'proxy CPU ms/req':>18}")
    for name in names:
        samples = results.serial[name]
        by_shape = "".join(f"{_median([s.p50(shape) for s in samples]):>9.2f}" for shape in SHAPES)
        p50, p99 = _median([s.p50() for s in samples]), _median([s.p99() for s in samples])
        print(f"  {label[name]:<30}{p50:>9.2f}{p99:>9.2f}{by_shape}{_cpu_cell(name, samples)}")
    print("  (short/medium/long: p50 ms of each request shape)")
    print(
        f"\nconcurrency {args.concurrency}, {args.throughput_requests} requests per path per round "
        f"(median over {args.rounds} rounds)"
    )
    print(f"  {'path':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'proxy CPU ms/req':>18}")
    for name in names:
        samples = results.loaded[name]
        rate = _median([s.throughput for s in samples])
        p50, p99 = _median([s.p50() for s in samples]), _median([s.p99() for s in samples])
        print(f"  {label[name]:<30}{rate:>9.1f}{p50:>9.2f}{p99:>9.2f}{_cpu_cell(name, samples)}")

    overheads = [
        h.p50() - p.p50() for h, p in zip(results.serial["biorouter"], results.serial["pass-through"], strict=True)
    ]
    ratios = [
        h.throughput / p.throughput if p.throughput else float("nan")
        for h, p in zip(results.loaded["biorouter"], results.loaded["pass-through"], strict=True)
    ]
    overhead, ratio = _median(overheads), _median(ratios)
    print()
    print(
        f"hook overhead, p50 over pass-through at concurrency 1: {overhead:.2f} ms "
        f"(rounds: {_rounds(overheads, '.2f')})   target <= {TARGET_OVERHEAD_MS:.0f} ms: "
        f"{'met' if overhead <= TARGET_OVERHEAD_MS else 'MISSED'}"
    )
    print(
        f"throughput with hook / pass-through at concurrency {args.concurrency}: {ratio:.0%} "
        f"(rounds: {_rounds([r * 100 for r in ratios], '.0f')} %)   target >= {TARGET_THROUGHPUT_RATIO:.0%}: "
        f"{'met' if ratio >= TARGET_THROUGHPUT_RATIO else 'MISSED'}"
    )

    extra = [
        h.cpu_ms_per_request() - p.cpu_ms_per_request()
        for h, p in zip(results.loaded["biorouter"], results.loaded["pass-through"], strict=True)
    ]
    print(
        f"extra proxy CPU per request over pass-through at concurrency {args.concurrency}: {_median(extra):.2f} ms "
        f"(rounds: {_rounds(extra, '.2f')})   target <= {TARGET_EXTRA_CPU_MS:.0f} ms: "
        f"{'met' if _median(extra) <= TARGET_EXTRA_CPU_MS else 'MISSED'}"
    )
    _cost_table(results, names, args)

    groups: Counter[str] = Counter()
    local_only = decided = 0
    for sample in results.serial["biorouter"] + results.loaded["biorouter"]:
        groups.update(sample.groups)
        local_only += sample.local_only
        decided += sum(sample.groups.values())
    mix = ", ".join(f"{g} {n / decided:.0%}" for g, n in groups.most_common()) if decided else "none"
    print(f"biorouter decisions ({decided} measured requests): {mix}; local-only {local_only / max(decided, 1):.0%}")
    if results.idle_wall_s:
        print(
            f"idle proxy while the other path was measured: {100 * results.idle_cpu_s / results.idle_wall_s:.1f}% "
            "of one core (background work that could bias the measured one)"
        )
    if results.foreign:  # phases under a second are too short for /proc's 10 ms ticks to judge alone
        mean = sum(cpu for cpu, _ in results.foreign) / sum(wall for _, wall in results.foreign)
        worst = max([cpu / wall for cpu, wall in results.foreign if wall >= 1.0], default=mean)
        warning = "  (busy machine: figures are noisy; rerun when it is quiet)" if mean > 0.1 else ""
        print(
            f"other processes on the machine during measurement: {100 * mean:.0f}% of one core on average, "
            f"{100 * worst:.0f}% in the busiest phase{warning}"
        )
    errors: Counter[str] = Counter()
    for store in (results.serial, results.loaded):
        for name in names:
            for sample in store[name]:
                errors.update({f"{name}: {k}": v for k, v in sample.errors.items()})
    if errors:
        print(f"FAILED requests (excluded from the figures): {dict(errors)}")
    return sum(errors.values())


def _cost_table(results: Results, names: Sequence[str], args: argparse.Namespace) -> None:
    """The hook's cost on single-call routes apart from what strategies add: upstream calls and CPU per request."""
    proxied = [name for name in names if name != "direct"]
    apart = f" apart from the strategies ({STRATEGY_PROFILE}: cascade, ensemble)" if "strategies" in names else ""
    print(
        f"\ncost per request, concurrency {args.concurrency} (median over rounds): the hook on single-call routes "
        f"({args.profile}){apart}"
    )
    header = f"{'calls/req':>10}{'CPU ms/req':>12}{'over pass-through':>19}{'CPU ms/call':>13}{'loop ms/req':>13}"
    print(f"  {'path':<30}{header}")
    base = _median([s.cpu_ms_per_request() for s in results.loaded["pass-through"]])
    base_loop = _median([s.loop_ms_per_request() for s in results.loaded["pass-through"]])
    for name in proxied:
        samples = results.loaded[name]
        calls, cpu, loop = (
            _median([s.calls_per_request() for s in samples]),
            _median([s.cpu_ms_per_request() for s in samples]),
            _median([s.loop_ms_per_request() for s in samples]),
        )
        over = f"{cpu - base:+.2f}" if name != "pass-through" else "-"
        print(
            f"  {LABELS[name]:<30}{calls:>10.2f}{cpu:>12.2f}{over:>19}{cpu / calls if calls else float('nan'):>13.2f}"
            f"{loop:>13.2f}"
        )
    single_cpu = _median([s.cpu_ms_per_request() for s in results.loaded["biorouter"]])
    single_loop = _median([s.loop_ms_per_request() for s in results.loaded["biorouter"]])
    if single_loop == single_loop and base_loop == base_loop:  # not NaN: one worker, threads readable
        print(
            f"  the hook's extra CPU on single-call routes: {single_loop - base_loop:+.2f} ms on the event-loop "
            f"thread, {(single_cpu - single_loop) - (base - base_loop):+.2f} ms in other threads (the encoder, "
            "long or NER scans, LiteLLM's thread pool)"
        )
    if "strategies" in proxied:
        strategies = _median([s.cpu_ms_per_request() for s in results.loaded["strategies"]])
        print(
            f"  the hook costs {single_cpu - base:+.2f} ms a request on single-call routes; strategy routes add "
            f"{strategies - single_cpu:+.2f} ms more (their extra upstream calls, each one LiteLLM's full handling)"
        )


def workers_table(
    one: Results, two: Mapping[str, list[Sample]], args: argparse.Namespace, counts: Sequence[int]
) -> None:
    """Throughput and CPU per request with one and with several proxy workers, pass-through and biorouter."""
    print(f"\nworkers, concurrency {args.concurrency} (median over rounds; several workers share one redis ledger)")
    print(f"  {'path':<30}{'workers':>8}{'req/s':>9}{'p50 ms':>9}{'CPU ms/req':>12}")
    rates: dict[tuple[str, int], float] = {}
    for name in ("pass-through", "biorouter"):
        for count, samples in ((1, one.loaded[name]), (counts[-1], two.get(name, []))):
            if not samples:
                continue
            rate = _median([s.throughput for s in samples])
            rates[(name, count)] = rate
            p50, cpu = _median([s.p50() for s in samples]), _median([s.cpu_ms_per_request() for s in samples])
            print(f"  {LABELS[name]:<30}{count:>8}{rate:>9.1f}{p50:>9.2f}{cpu:>12.2f}")
    for count in (1, counts[-1]):
        if ("biorouter", count) in rates and rates.get(("pass-through", count)):
            ratio = rates[("biorouter", count)] / rates[("pass-through", count)]
            print(f"  biorouter / pass-through with {count} worker(s): {ratio:.0%}")


def _write_config(path: Path, base: Mapping[str, Any], api_base: str, groups: Sequence[str], callback: str) -> None:
    config = standin_config(base, {group: api_base for group in groups})
    config.setdefault("litellm_settings", {})["callbacks"] = callback
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _guard_classifier(proxy_env: Mapping[str, str]) -> TaskClassifier:
    """The classifier the hook proxy ran: the same home and cache (``--proxy-env`` applies here too)."""
    os.environ.update(proxy_env)
    return TaskClassifier.from_settings(load_settings(Path(proxy_env.get("BIOROUTER_HOME", ROOT))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per path per round at concurrency 1")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in the throughput phase")
    parser.add_argument(
        "--throughput-requests", type=int, default=None, help="requests per path per round under load (2x --requests)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median over rounds")
    parser.add_argument("--upstream-latency-ms", type=int, default=0, help="fixed delay of the stand-in's answers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", default=PROFILE, help=f"profile the hook routes by (default {PROFILE}; its groups are stand-ins)"
    )
    parser.add_argument("--quick", action="store_true", help="100 requests, 2 rounds (about a minute)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy guard line")
    parser.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for both proxies and the accuracy guard, to measure a variant "
        "(e.g. BIOROUTER_HOME=/path/to/a/copy, BIOROUTER_CACHE_DIR=..., BIOROUTER_LOG_LEVEL=WARNING)",
    )
    parser.add_argument(
        "--no-strategies", dest="strategies", action="store_false", help=f"skip the {STRATEGY_PROFILE} strategy path"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for the workers table (1: skip the table)"
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="keep configs and logs here (default: a temp dir)")
    parser.add_argument(
        "--encoder",
        choices=("in-process", "endpoint"),
        default="in-process",
        help="where the classifier embeds: in the proxy (the embedded default) or at an embeddings server "
        "(the stand-in's /v1/embeddings on loopback, as a GPU embeddings server in production; routes are "
        "then not meaningful, the stand-in's vectors are hashes, and the accuracy guard is skipped)",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = min(args.requests, 100), min(args.rounds, 2)
    args.throughput_requests = args.throughput_requests or max(2 * args.requests, 4 * args.concurrency)
    if bad := [item for item in args.proxy_env if "=" not in item]:
        parser.error(f"--proxy-env takes NAME=VALUE, not {', '.join(bad)}")
    args.proxy_env = dict(item.split("=", 1) for item in args.proxy_env)
    return args


async def measure_loaded(
    targets: Sequence[Target], source: PromptSource, args: argparse.Namespace
) -> dict[str, list[Sample]]:
    """Only the concurrency-N phase, rounds in rotated order (the workers table)."""
    loaded: dict[str, list[Sample]] = {t.name: [] for t in targets}
    async with AsyncExitStack() as sessions:
        clients = await open_clients(sessions, targets, args.concurrency)
        for target in targets:  # warm-up: every worker's connections and first encoder calls
            await run_phase(clients[target.name], target, source.take(4 * args.concurrency), args.concurrency)
        for round_index in range(args.rounds):
            prompts = source.take(args.throughput_requests)
            for target in [targets[(round_index + i) % len(targets)] for i in range(len(targets))]:
                loaded[target.name].append(await run_phase(clients[target.name], target, prompts, args.concurrency))
            print(f"  workers round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return loaded


def endpoint_home(run_dir: Path, api_base: str) -> Path:
    """A biorouter home like the checkout's, whose classifier embeds through ``api_base``/embeddings.

    The production topology for a busy proxy: the encoder on the GPU embeddings server, so the
    proxy's CPU goes to routing only. Declared ``local`` (the server is the group's own).
    """
    config = yaml.safe_load((ROOT / "biorouter.yaml").read_text(encoding="utf-8"))
    for key in ("profiles_dir", "utterances_dir", "litellm_config"):
        config[key] = str(ROOT / config[key])
    config["cache_dir"] = str(run_dir / "cache")
    config["classifier"]["encoder"] = {
        "kind": "openai-compatible",
        "model": "bench-embeddings",
        "api_base": api_base,
        "locality": "local",
    }
    home = run_dir / "home"
    home.mkdir(exist_ok=True)
    if not (home / "utterances").exists():  # profiles name their complexity examples relative to the home
        (home / "utterances").symlink_to(ROOT / "utterances", target_is_directory=True)
    (home / "biorouter.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return home


def _start_all(proxies: Mapping[str, BenchProxy]) -> None:
    with ThreadPoolExecutor(len(proxies)) as pool:  # at once: start-up is not what is measured here
        for started in [pool.submit(p.start) for p in proxies.values()]:
            started.result()


def _target(name: str, proxy: BenchProxy, standin: StandIn) -> Target:
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    calls = lambda: int(standin.stats()["chat_requests"])  # noqa: E731
    return Target(name, proxy.url + "/v1/chat/completions", "auto", headers, proxy, calls)


def main() -> int:
    args = parse_args()
    settings = load_settings(ROOT)
    profile = load_profile(settings.profiles_path / f"{args.profile}.yaml")
    strategy_groups = load_profile(settings.profiles_path / f"{STRATEGY_PROFILE}.yaml").groups()
    groups = sorted(profile.groups() | (strategy_groups if args.strategies else set()))
    passthrough_group = profile.default_route.group  # where the pass-through hook sends everything
    source = PromptSource(load_utterances(settings.utterances_path), args.seed)
    base = yaml.safe_load(settings.litellm_config_path.read_text(encoding="utf-8")) or {}
    hook = str((base.get("litellm_settings") or {}).get("callbacks"))
    two: dict[str, list[Sample]] = {}

    with ExitStack() as stack:
        run_dir = args.run_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="proxy-overhead-")))
        run_dir.mkdir(parents=True, exist_ok=True)
        fault = Fault(latency_ms=args.upstream_latency_ms)
        standin = StandIn("bench", fault=fault, log_path=run_dir / "standin.log")
        stack.callback(standin.stop)
        standin.start()
        home = ROOT if args.encoder == "in-process" else endpoint_home(run_dir, standin.api_base)
        env = {
            "BIOROUTER_HOME": str(home),
            "BIOROUTER_PROFILE": args.profile,
            "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl"),
            GROUP_ENV: passthrough_group,
            **args.proxy_env,
        }
        paths = [("pass-through", PASSTHROUGH_CALLBACK, env), ("biorouter", hook, env)]
        if args.strategies:
            paths.append(("strategies", hook, {**env, "BIOROUTER_PROFILE": STRATEGY_PROFILE}))
        proxies: dict[str, BenchProxy] = {}
        for name, callback, proxy_env in paths:
            config = run_dir / f"litellm.{name}.yaml"
            _write_config(config, base, standin.api_base, groups, callback)
            proxies[name] = BenchProxy(config, env=proxy_env, log_path=run_dir / f"proxy.{name}.log")
            stack.callback(proxies[name].stop)
        print(f"starting the stand-in and {len(proxies)} litellm proxies (logs in {run_dir}) ...", file=sys.stderr)
        _start_all(proxies)
        direct = Target("direct", standin.api_base + "/chat/completions", passthrough_group, {})
        targets = [direct, *(_target(name, proxy, standin) for name, proxy in proxies.items())]
        print(
            f"proxy overhead: litellm {version('litellm')}, profile {args.profile}"
            + (f" (strategy routes: {STRATEGY_PROFILE})" if args.strategies else "")
            + f", one stand-in serves every group with {args.upstream_latency_ms} ms added latency; "
            f"{os.cpu_count()} CPU cores shared by client, stand-in and proxies; load average "
            f"{os.getloadavg()[0]:.1f} at start; proxies up, loaded one at a time, paths in rotated order each round; "
            f"unique request texts ({' / '.join(SHAPES)} in equal parts)"
            + (f"; proxy environment: {args.proxy_env}" if args.proxy_env else "")
            + f"; classifier encoder {args.encoder}"
            + (" (the stand-in's /v1/embeddings)" if args.encoder == "endpoint" else ""),
            flush=True,
        )
        results = asyncio.run(measure(targets, source, args))
        for proxy in proxies.values():
            proxy.stop()
        if args.workers > 1:
            two = _measure_workers(args, run_dir, standin, env, hook, source, stack)

    failed = report(results, targets, args)
    if args.workers > 1:
        if two:
            workers_table(results, two, args, (1, args.workers))
        else:
            print("\nworkers table skipped: several workers need a shared ledger and redis-server is not installed")
    if args.encoder == "endpoint":
        print("accuracy guard skipped: the embeddings stand-in's vectors are hashes, not a model's")
    elif not args.no_accuracy:
        print(accuracy_line(_guard_classifier(args.proxy_env)))
    return 1 if failed else 0


def _measure_workers(
    args: argparse.Namespace,
    run_dir: Path,
    standin: StandIn,
    env: Mapping[str, str],
    hook: str,
    source: PromptSource,
    stack: ExitStack,
) -> dict[str, list[Sample]]:
    """Pass-through and biorouter with ``--workers`` processes each, over one redis-server ledger."""
    if not RedisServer.available():
        return {}
    redis = RedisServer(log_path=run_dir / "redis.log").start()
    stack.callback(redis.stop)
    proxies = {
        name: BenchProxy(
            run_dir / f"litellm.{name}.yaml",
            env={**env, "REDIS_URL": redis.url},
            log_path=run_dir / f"proxy.{name}.workers.log",
            workers=args.workers,
        )
        for name in ("pass-through", "biorouter")
    }
    for proxy in proxies.values():
        stack.callback(proxy.stop)
    print(f"starting both proxies again with {args.workers} workers each ...", file=sys.stderr, flush=True)
    _start_all(proxies)
    try:
        return asyncio.run(measure_loaded([_target(n, p, standin) for n, p in proxies.items()], source, args))
    finally:
        for proxy in proxies.values():
            proxy.stop()


if __name__ == "__main__":
    sys.exit(main())
