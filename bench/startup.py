"""How long the LiteLLM proxy with the biorouter hook takes to serve its first routed request, and its memory.

A proxy that restarts slowly is a proxy operators hesitate to restart (config changes, SLURM
jobs moving), so start-up has a budget: ready in 10 s, peak RSS under 1 GiB. Each start runs the
real ``litellm`` CLI as ``make run`` does (:class:`~biorouter.testing.devstack.ProxyProcess`,
``BIOROUTER_WARMUP=1``, development profile; every group served by one stand-in) and times, from
just before the process is spawned:

- ``/health/liveliness`` answering 200 (uvicorn is up), then ``/health/readiness``;
- the first ``"model": "auto"`` chat request answered 200 with a routed decision, which needs the
  classifier (loaded by the hook's warm-up thread) and the engine (built on the first request).

Where the time goes comes for free from the proxy's own log, timestamped here as each line
arrives (20 ms polling): the end of the imports (uvicorn's "Started server process"), the hook's
construction while LiteLLM loads the config, LiteLLM's "Application startup complete", the
warm-up's "classifier loaded". ``--imports`` adds ``python -X importtime`` figures.

Memory is the peak resident set (``VmHWM``) of every process in the proxy's session (the litellm
CLI runs uvicorn in its own process, but a multi-worker setup would fork), read at the first
answer and again after a burst of requests at concurrency 32 (ONNX Runtime's arena grows with
the batch).

Cache states: *warm* uses the project's cache (``.cache``: the exported ONNX model and the
utterance embeddings), primed by one unmeasured start, which also warms the OS page cache;
``--cold`` adds starts with ``BIOROUTER_CACHE_DIR`` pointed at an empty temporary folder, so the
model is exported and every utterance embedded again. Prints figures and targets; gates nothing.
Run: ``python bench/startup.py`` (``--repeats 1`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from common import ROOT

from biorouter.routing.profiles import load_profile
from biorouter.settings import load_settings
from biorouter.testing.devstack import ProxyProcess, standin_config
from biorouter.testing.standin import StandIn

PROFILE = "development"
TARGET_READY_S = 10.0
TARGET_RSS_MIB = 1024.0
POLL_S = 0.02
BURST_REQUESTS = 96
BURST_CONCURRENCY = 32
CODE_LINE = "    reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30 and not r.is_duplicate]\n"
FIRST_PROMPT = "write a python function that parses a FASTA file into a dict"

# Lines of the proxy log that mark a phase, in the order they normally appear.
MARKERS: dict[str, str] = {
    "imports done": "Started server process",
    "hook built": "biorouter endpoints:",
    "litellm startup done": "Application startup complete",
    "classifier loaded": "biorouter classifier loaded",
    "engine built": "biorouter active profile",
}


class LaunchedProxy(ProxyProcess):
    """A :class:`ProxyProcess` that only launches: the benchmark does the waiting, with a stopwatch."""

    def wait_ready(self, timeout: float) -> None:
        """Return at once; :func:`one_start` polls the proxy itself."""

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the proxy was not started")
        return self._proc.pid

    def exited(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None


def session_peaks(session_id: int) -> dict[int, int]:
    """Peak RSS (``VmHWM``, KiB) of every live process in a session (the proxy and anything it spawned)."""
    peaks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session_id:  # field 6 of stat: the session id
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, IndexError):
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            peaks[int(entry)] = int(match.group(1))
    return peaks


@dataclass
class Start:
    """What one start measured; times in seconds from just before the spawn."""

    cache: str
    live_s: float = float("nan")
    ready_s: float = float("nan")
    routed_s: float = float("nan")
    marks: dict[str, float] = field(default_factory=dict)
    peak_first_mib: float = float("nan")
    peak_burst_mib: float = float("nan")
    processes: int = 0
    burst_errors: int = 0


class LogFollower:
    """Reads the proxy log as it grows and notes when each marker line first appeared."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle: IO[bytes] | None = None
        self._partial = b""
        self.marks: dict[str, float] = {}

    def poll(self, elapsed: float) -> None:
        if self._handle is None:
            if not self._path.is_file():
                return
            self._handle = self._path.open("rb")
        chunk = self._handle.read()
        if not chunk:
            return
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            for name, needle in MARKERS.items():
                if name not in self.marks and needle in line:
                    self.marks[name] = elapsed

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _burst_prompts(count: int) -> list[str]:
    shapes = [FIRST_PROMPT, f"Context: 48 samples per NovaSeq run. {FIRST_PROMPT}", "```\n" + CODE_LINE * 120 + "```\n"]
    return [f"{shapes[i % 3]} how do I speed this up? (ref {i})" for i in range(count)]


async def _burst(url: str, headers: Mapping[str, str]) -> int:
    """``BURST_REQUESTS`` routed requests, ``BURST_CONCURRENCY`` at a time; the number that failed."""
    limits = httpx.Limits(max_connections=BURST_CONCURRENCY)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as client:
        gate = asyncio.Semaphore(BURST_CONCURRENCY)

        async def one(text: str) -> bool:
            async with gate:
                body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
                response = await client.post(url, json=body, headers=dict(headers))
                return response.status_code == 200

        results = await asyncio.gather(*(one(t) for t in _burst_prompts(BURST_REQUESTS)))
    return sum(not ok for ok in results)


def one_start(config: Path, env: Mapping[str, str], log_path: Path, cache: str, timeout: float) -> Start:
    """Spawn the proxy, poll it until the first routed answer, measure memory, stop it."""
    result = Start(cache)
    proxy = LaunchedProxy(config, env=env, log_path=log_path)
    follower = LogFollower(log_path)
    peaks: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": FIRST_PROMPT}]}
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            start = time.monotonic()
            proxy.start()
            while (elapsed := time.monotonic() - start) < timeout:
                follower.poll(elapsed)
                for pid, kib in session_peaks(proxy.pid).items():
                    peaks[pid] = max(peaks.get(pid, 0), kib)
                if proxy.exited():
                    raise RuntimeError(f"the proxy exited during start-up; log tail:\n{proxy.log_tail()}")
                try:
                    if math.isnan(result.live_s):
                        if client.get(proxy.url + "/health/liveliness", timeout=1).status_code == 200:
                            result.live_s = time.monotonic() - start
                    elif math.isnan(result.ready_s):
                        if client.get(proxy.url + "/health/readiness", timeout=5).status_code == 200:
                            result.ready_s = time.monotonic() - start
                    else:
                        response = client.post(proxy.url + "/v1/chat/completions", json=body, headers=headers)
                        if response.status_code == 200 and response.headers.get("x-biorouter-mode") == "routed":
                            result.routed_s = time.monotonic() - start
                            break
                except httpx.TransportError:
                    pass
                time.sleep(POLL_S)
            else:
                raise RuntimeError(f"no routed answer within {timeout:.0f} s; log tail:\n{proxy.log_tail()}")
        follower.poll(time.monotonic() - start)
        for pid, kib in session_peaks(proxy.pid).items():
            peaks[pid] = max(peaks.get(pid, 0), kib)
        result.peak_first_mib = sum(peaks.values()) / 1024
        result.burst_errors = asyncio.run(_burst(proxy.url + "/v1/chat/completions", headers))
        for pid, kib in session_peaks(proxy.pid).items():
            peaks[pid] = max(peaks.get(pid, 0), kib)
        result.peak_burst_mib = sum(peaks.values()) / 1024
        result.processes = len(peaks)
        follower.poll(time.monotonic() - start)
        result.marks = dict(follower.marks)
    finally:
        follower.close()
        proxy.stop()
    return result


def import_times() -> list[tuple[str, float]]:
    """``python -X importtime`` of the proxy's modules: the total, the biggest parts, biorouter's hook after it."""
    code = "import litellm.proxy.proxy_server; import biorouter.proxy.hook"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    rows: list[tuple[int, str, float]] = []  # (depth, module, cumulative seconds), in completion order
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((len(match.group(2)) // 2, match.group(3), int(match.group(1)) / 1e6))
    cumulative = {name: seconds for depth, name, seconds in rows if depth == 0}
    parts: list[tuple[str, float]] = []
    for index, (depth, name, _) in enumerate(rows):  # direct children of proxy_server: depth 1 before it
        if name == "litellm.proxy.proxy_server" and depth == 0:
            children, back = [], index - 1
            while back >= 0 and rows[back][0] >= 1:
                if rows[back][0] == 1:
                    children.append((rows[back][1], rows[back][2]))
                back -= 1
            parts = sorted(children, key=lambda item: -item[1])[:8]
            break
    sdk = next((seconds for _, name, seconds in rows if name == "litellm"), float("nan"))
    return [
        ("import litellm.proxy.proxy_server (total)", cumulative.get("litellm.proxy.proxy_server", float("nan"))),
        ("  of which the litellm SDK (paid by the first child, litellm.proxy)", sdk),
        *[(f"  of which {name}", seconds) for name, seconds in parts if name != "litellm.proxy"],
        ("import biorouter.proxy.hook (after it)", cumulative.get("biorouter.proxy.hook", float("nan"))),
    ]


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else float("nan")


def report(starts: Sequence[Start], caches: Sequence[str]) -> None:
    def cell(cache: str, attribute: str, unit: str) -> str:
        value = _median([getattr(s, attribute) for s in starts if s.cache == cache])
        return f"{'-':>14}" if math.isnan(value) else f"{value:>10.1f} {unit:<3}"

    head = "".join(f"{cache + ' cache':>14}" for cache in caches)
    print(f"  {'':<40}{head}   target")
    rows = (
        ("/health/liveliness 200", "live_s", "s", ""),
        ("/health/readiness 200", "ready_s", "s", f"<= {TARGET_READY_S:.0f} s"),
        ("first routed request 200", "routed_s", "s", f"<= {TARGET_READY_S:.0f} s"),
        ("peak RSS at the first answer", "peak_first_mib", "MiB", ""),
        (f"peak RSS after {BURST_REQUESTS} requests (c={BURST_CONCURRENCY})", "peak_burst_mib", "MiB", "<= 1 GiB"),
    )
    for label, attribute, unit, target in rows:
        print(f"  {label:<40}" + "".join(cell(cache, attribute, unit) for cache in caches) + f"   {target}")
    for cache in caches:
        of_cache = [s for s in starts if s.cache == cache]
        routed = _median([s.routed_s for s in of_cache])
        ready = _median([s.ready_s for s in of_cache])
        rss = _median([s.peak_burst_mib for s in of_cache])
        verdicts = [
            f"readiness {'met' if ready <= TARGET_READY_S else 'MISSED'}",
            f"first routed {'met' if routed <= TARGET_READY_S else 'MISSED'}",
            f"RSS {'met' if rss <= TARGET_RSS_MIB else 'MISSED'}",
        ]
        processes = max(s.processes for s in of_cache)
        errors = sum(s.burst_errors for s in of_cache)
        print(
            f"  {cache} cache: {', '.join(verdicts)}; {processes} process(es) in the proxy's session; "
            f"{len(of_cache)} start(s): ready at {', '.join(f'{s.ready_s:.1f}' for s in of_cache)} s, "
            f"routed at {', '.join(f'{s.routed_s:.1f}' for s in of_cache)} s; "
            f"load average {os.getloadavg()[0]:.1f} (a shared machine makes these noisy)"
            + (f"; {errors} burst request(s) FAILED" if errors else "")
        )
        marks = {name: _median([s.marks.get(name, float("nan")) for s in of_cache]) for name in MARKERS}
        live = _median([s.live_s for s in of_cache])
        print(f"  where the time goes ({cache} cache, medians, s from spawn; log lines timestamped on arrival):")
        phases = [
            ("imports done", "python, the litellm CLI, import litellm.proxy.proxy_server"),
            ("hook built", "LiteLLM start-up event up to the callbacks: biorouter hook constructed"),
            ("litellm startup done", "rest of LiteLLM's start-up event (router, model list)"),
        ]
        previous = 0.0
        for name, what in phases:
            at = marks[name]
            print(f"    {previous:5.2f} -> {at:5.2f}  ({at - previous:4.2f})  {what}")
            previous = previous if math.isnan(at) else at
        print(f"    {previous:5.2f} -> {live:5.2f}  ({live - previous:4.2f})  uvicorn binds, first liveliness answer")
        loaded, engine = marks["classifier loaded"], marks["engine built"]
        print(
            f"    classifier loaded by the warm-up thread at {loaded:.2f} s "
            f"({loaded - marks['hook built']:.2f} s after the hook was built); "
            f"engine built on the first request at {engine:.2f} s; answered at {routed:.2f} s"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="starts per cache state; medians are reported")
    parser.add_argument("--cold", action="store_true", help="also start with an empty cache (BIOROUTER_CACHE_DIR)")
    parser.add_argument("--imports", action="store_true", help="also print python -X importtime figures")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a start counts as failed")
    parser.add_argument("--run-dir", type=Path, default=None, help="keep configs and logs here (default: a temp dir)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    settings = load_settings(ROOT)
    groups = sorted(load_profile(settings.profiles_path / f"{PROFILE}.yaml").groups())
    base: dict[str, Any] = yaml.safe_load(settings.litellm_config_path.read_text(encoding="utf-8")) or {}
    caches = ["warm", "cold"] if args.cold else ["warm"]
    starts: list[Start] = []
    with ExitStack() as stack:
        run_dir = args.run_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="startup-")))
        run_dir.mkdir(parents=True, exist_ok=True)
        standin = StandIn("bench", log_path=run_dir / "standin.log")
        stack.callback(standin.stop)
        standin.start()
        config = run_dir / "litellm.standins.yaml"
        overlay = standin_config(base, {group: standin.api_base for group in groups})
        config.write_text(yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
        env = {
            "BIOROUTER_HOME": str(ROOT),
            "BIOROUTER_PROFILE": PROFILE,
            "BIOROUTER_AUDIT_LOG": str(run_dir / "a.jsonl"),
        }
        warm_env = {**env, "BIOROUTER_CACHE_DIR": str(settings.cache_path)}
        print(f"priming: one unmeasured start (fills {settings.cache_path} if needed) ...", file=sys.stderr, flush=True)
        one_start(config, warm_env, run_dir / "proxy.prime.log", "warm", args.timeout)
        for repeat in range(args.repeats):  # warm and cold alternate, so drift on the machine hits both
            for cache in caches:
                if cache == "warm":
                    cache_env = warm_env
                else:
                    empty = stack.enter_context(tempfile.TemporaryDirectory(prefix="biorouter-cache-"))
                    cache_env = {**env, "BIOROUTER_CACHE_DIR": empty}
                log_path = run_dir / f"proxy.{cache}.{repeat}.log"
                starts.append(one_start(config, cache_env, log_path, cache, args.timeout))
                print(f"  {cache} start {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    print(
        f"proxy start-up: litellm {version('litellm')} CLI with the biorouter hook (BIOROUTER_WARMUP=1), "
        f"profile {PROFILE}, {len(groups)} groups on one stand-in; {os.cpu_count()} CPU cores; "
        f"median of {args.repeats} start(s) per cache state"
    )
    report(starts, caches)
    if args.imports:
        print("imports (python -X importtime, one process, cumulative s):")
        for label, seconds in import_times():
            print(f"  {label:<70}{seconds:6.2f}")
    return 1 if any(s.burst_errors for s in starts) else 0


if __name__ == "__main__":
    sys.exit(main())
