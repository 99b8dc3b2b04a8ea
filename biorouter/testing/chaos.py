"""Chaos soak: load through a real proxy while stand-in upstreams fail at random, and what it proves.

Fault model (:class:`ChaosDriver`). Every 0.5-2 s the driver ends the incidents whose time is up
and may start one on a random healthy stand-in, for 0.5-3 s:

* ``error500`` / ``error429`` -- a share (30-100 %) of calls answer HTTP 500 / 429 (``retry-after: 0``);
* ``stall`` -- every call waits longer than the request timeout, so LiteLLM times it out;
* ``down`` -- connections are dropped without an answer (a crashed server behind a live socket);
* ``killed`` -- the process is stopped, then started again on the same port (connection refused
  meanwhile). Local stand-ins only: a restart would reset the cloud stand-in's canary counter.

An incident starts only if every route chain (a route's group plus its fallbacks, tiers included,
chat groups only) keeps at least one healthy member, as a real outage does not take every path at
once. A group counts as unhealthy for this rule from its incident's start until ``settle_s``
(10 s) after its end: a request lives several seconds (a stalled attempt costs the whole request
timeout, then a retry, then the fallback), and without the margin it could meet its primary
failing and, moments later, its fallback failing in the next incident -- every path down within
one request's life, which the rule means to exclude.
A local-only request may still find its local path down and get a clear 503 (governance outranks
availability); cloud-allowed requests always have a path, which is what the 99.9 % bar measures.

Load (:func:`run_soak`): ``total`` chat requests, ``concurrency`` at a time, each with a task hint
from :data:`PROMPTS` and a per-request ``timeout`` (``REQUEST_TIMEOUT_S``) short enough that a
stall costs seconds, not the profile's 30 s. A fifth carry a patient or sample identifier and must
stay local: the cloud stand-in counts every request with one (its canary), and a sensitive request
answered by a cloud stand-in is counted as a leak from the client side too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from biorouter.routing.profiles import Profile
from biorouter.testing.standin import StandInFleet

__all__ = ["PROMPTS", "ChaosDriver", "Incident", "SoakReport", "route_chains", "run_soak"]

KINDS = ("error500", "error429", "stall", "down", "killed")
REQUEST_TIMEOUT_S = 3.0  # sent with every request: LiteLLM's per-attempt timeout
STALL_MS = 4_500  # a stalled stand-in answers after this: beyond REQUEST_TIMEOUT_S
CLIENT_TIMEOUT_S = 90.0  # the bound on one request's whole life (retries and fallbacks included)
SENSITIVE_TEXT = re.compile(r"\bSMP-\d{6}(?!\d)|MRN: ?\d{6,}")
_SERVED = re.compile(r"^\[([^\]]+)\]")

# task hint -> prompts that the classifier also reads as that task (so a hint never meets a
# stricter classified route by accident); the identifiers make a request local-only by content.
PROMPTS: dict[str, tuple[str, ...]] = {
    "code_generation": (
        "write a python function that parses a FASTA file into a dict",
        "write a snakemake rule that sorts a BAM file with samtools",
    ),
    "math_statistics": (
        "what is a p-value, in plain words?",
        "explain the difference between a t-test and a Mann-Whitney test",
    ),
    "documentation": ("write a README for my Python package that aligns reads and reports coverage",),
    "intent_parsing": ("hi there! how are you today?", "tell me a joke about pipettes"),
    "orchestration": ("run the RNA-seq pipeline end to end on ./data/sample1.fastq.gz and ./data/sample2.fastq.gz",),
    "biomedical": ("what does BRCA1 do?", "what is the function of the KRAS protein?"),
}
SENSITIVE_SUFFIXES = (" for sample SMP-{n:06d}", " (patient MRN: {n:08d})")


def route_chains(profile: Profile, chat_groups: Iterable[str], tasks: Iterable[str] | None = None) -> list[list[str]]:
    """Each route's chat groups in order (group, then fallbacks; every tier too), for ``tasks`` or all routes."""
    chat = set(chat_groups)
    names = list(profile.routes) if tasks is None else [t for t in tasks if t in profile.routes]
    routes = [profile.default_route, *(profile.routes[name] for name in names)]
    routes += [route.for_tier(tier) for route in list(routes) for tier in route.tiers]
    chains = []
    for route in routes:
        chain = [g for g in (route.group, *route.fallbacks) if g in chat]
        if chain and chain not in chains:
            chains.append(chain)
    return chains


@dataclass(frozen=True)
class Incident:
    group: str
    kind: str
    until: float  # time.monotonic() when it ends


class ChaosDriver:
    """Random incidents on a :class:`StandInFleet` from a thread; :meth:`stop` heals everything."""

    def __init__(
        self,
        fleet: StandInFleet,
        chains: Sequence[Sequence[str]],
        *,
        cloud_groups: Iterable[str] = (),
        seed: int = 0,
        tick_s: tuple[float, float] = (0.5, 2.0),
        duration_s: tuple[float, float] = (0.5, 3.0),
        settle_s: float = 10.0,
    ) -> None:
        self.fleet = fleet
        self.chains = [list(chain) for chain in chains]
        self.targets = sorted({g for chain in self.chains for g in chain if g in fleet.names})
        self.cloud = set(cloud_groups)
        self.rng = random.Random(seed)
        self.tick_s = tick_s
        self.duration_s = duration_s
        self.settle_s = settle_s
        self.active: dict[str, Incident] = {}
        self.settling: dict[str, float] = {}  # group -> monotonic time until which it still counts as unhealthy
        self.started: Counter[str] = Counter()
        self.errors: list[str] = []  # control calls that failed (a stand-in not answering its admin API)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def allowed(self, group: str, now: float | None = None) -> bool:
        """Whether ``group`` may fail now: every chain keeps a member with no incident now or lately."""
        now = time.monotonic() if now is None else now
        faulted = {*self.active, *(g for g, until in self.settling.items() if until > now), group}
        return all(any(member not in faulted for member in chain) for chain in self.chains)

    def start(self) -> ChaosDriver:
        self._thread = threading.Thread(target=self._run, name="chaos-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the incidents, restart killed stand-ins, and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        for group in list(self.active):
            self._end(group)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(*self.tick_s)):
            now = time.monotonic()
            for group, incident in list(self.active.items()):
                if incident.until <= now:
                    self._end(group)
            candidates = [g for g in self.targets if g not in self.active and self.allowed(g, now)]
            if candidates:
                self._begin(self.rng.choice(candidates))

    def _begin(self, group: str) -> None:
        kinds = [k for k in KINDS if not (k == "killed" and group in self.cloud)]
        kind = self.rng.choice(kinds)
        member = self.fleet[group]
        try:
            if kind == "error500":
                member.set_fault(error_rate=round(self.rng.uniform(0.3, 1.0), 2), status=500)
            elif kind == "error429":
                member.set_fault(error_rate=round(self.rng.uniform(0.3, 1.0), 2), status=429)
            elif kind == "stall":
                member.set_fault(latency_ms=STALL_MS)
            elif kind == "down":
                member.set_fault(down=True)
            else:
                member.stop()
        except (httpx.HTTPError, ValueError, TypeError, RuntimeError) as e:
            self.errors.append(f"{group} {kind}: {e}")
            return
        self.active[group] = Incident(group, kind, time.monotonic() + self.rng.uniform(*self.duration_s))
        self.started[kind] += 1

    def _end(self, group: str) -> None:
        incident = self.active.pop(group)
        self.settling[group] = time.monotonic() + self.settle_s
        member = self.fleet[group]
        try:
            if incident.kind == "killed":
                member.start()
            else:
                member.clear_fault()
        except (httpx.HTTPError, ValueError, TypeError, RuntimeError) as e:
            self.errors.append(f"{group} end of {incident.kind}: {e}")


@dataclass
class SoakReport:
    """What a soak run measured; :meth:`problems` lists every bar it missed."""

    total: int = 0
    concurrency: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "503", "transport:ReadError", ...
    unclear: list[str] = field(default_factory=list)  # error answers without a biorouter/LiteLLM message
    failed_samples: list[str] = field(default_factory=list)  # the first few errors of cloud-allowed requests
    cloud_allowed: int = 0
    cloud_allowed_ok: int = 0
    local_only: int = 0
    local_only_ok: int = 0
    leaks_client_side: int = 0  # sensitive requests answered by a cloud stand-in
    canary_hits: int = 0  # sensitive requests the cloud stand-in received (any outcome)
    header_mismatches: int = 0  # answers whose x-biorouter-local-only disagrees with the request's kind
    served_by: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    chaos_errors: list[str] = field(default_factory=list)
    proxy_pid_before: int = 0
    proxy_pid_after: int | None = None
    latencies: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(n for status, n in self.statuses.items() if not status.startswith("transport")) - len(self.unclear)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    def problems(self, *, min_cloud_success: float = 0.999) -> list[str]:
        found = []
        if self.answered != self.total:
            found.append(
                f"answered {self.answered}/{self.total} (statuses {dict(self.statuses)}; unclear {self.unclear[:3]})"
            )
        if self.cloud_allowed and self.cloud_allowed_ok / self.cloud_allowed < min_cloud_success:
            found.append(
                f"cloud-allowed success {self.cloud_allowed_ok}/{self.cloud_allowed} < {min_cloud_success:.1%}"
            )
        if self.leaks_client_side or self.canary_hits:
            found.append(
                f"governance leaks: {self.leaks_client_side} answered by cloud, {self.canary_hits} canary hits"
            )
        if self.proxy_pid_after != self.proxy_pid_before:
            found.append(f"proxy restarted or died (pid {self.proxy_pid_before} -> {self.proxy_pid_after})")
        if self.header_mismatches:
            found.append(f"{self.header_mismatches} answers with an unexpected x-biorouter-local-only")
        return found

    def lines(self) -> list[str]:
        rate = self.total / self.seconds if self.seconds else 0.0
        return [
            f"requests            {self.total} at concurrency {self.concurrency} in {self.seconds:.1f} s "
            f"({rate:.1f}/s)",
            f"answered            {_pct(self.answered, self.total)} (success or a clear 4xx/503 error)",
            f"statuses            {dict(sorted(self.statuses.items()))}",
            f"cloud-allowed ok    {_pct(self.cloud_allowed_ok, self.cloud_allowed)}",
            f"local-only ok       {_pct(self.local_only_ok, self.local_only)} (the rest: clear 503, kept local)",
            f"governance leaks    {self.leaks_client_side + self.canary_hits} "
            f"(cloud answers to sensitive requests {self.leaks_client_side}, cloud canary hits {self.canary_hits})",
            f"proxy restarts      {0 if self.proxy_pid_after == self.proxy_pid_before else 1} "
            f"(pid {self.proxy_pid_before} -> {self.proxy_pid_after})",
            f"latency             p50 {self.percentile(0.5):.2f} s, p99 {self.percentile(0.99):.2f} s, "
            f"max {max(self.latencies, default=0.0):.2f} s",
            f"served by           {dict(sorted(self.served_by.items()))}",
            f"incidents           {dict(sorted(self.incidents.items()))} (control errors: {len(self.chaos_errors)})",
        ]


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} = {100 * part / whole:.2f} %" if whole else "0/0"


def soak_request(index: int, rng: random.Random) -> tuple[dict[str, Any], bool]:
    """Request ``index``: a body with a task hint, and whether it carries an identifier (must stay local)."""
    task = rng.choice(sorted(PROMPTS))
    text = rng.choice(PROMPTS[task])
    sensitive = rng.random() < 0.2
    if sensitive:
        text += rng.choice(SENSITIVE_SUFFIXES).format(n=rng.randrange(10**6))
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": f"{text} (#{index})"}],
        "metadata": {"biorouter_task": task},
        "timeout": REQUEST_TIMEOUT_S,
    }
    return body, sensitive


def _is_clear_error(status: int, text: str) -> bool:
    """A 4xx, or a 503 / 5xx whose message comes from biorouter or LiteLLM (not a bare server crash)."""
    if 400 <= status < 500:
        return True
    return "biorouter" in text or "litellm" in text.lower()


async def run_soak(
    url: str,
    key: str,
    *,
    total: int,
    concurrency: int,
    allow_cloud: dict[str, bool],
    cloud_groups: Iterable[str],
    seed: int = 0,
    report: SoakReport | None = None,
    progress: bool = False,
) -> SoakReport:
    """Send the soak's requests and fill ``report`` (proxy pid, canary and incidents are the caller's)."""
    report = report or SoakReport()
    report.total, report.concurrency = total, concurrency
    cloud = set(cloud_groups)
    rng = random.Random(seed)
    requests = [soak_request(i, rng) for i in range(total)]
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    started = time.perf_counter()

    async def one(client: httpx.AsyncClient, body: dict[str, Any], sensitive: bool) -> None:
        nonlocal done
        cloud_allowed = allow_cloud[body["metadata"]["biorouter_task"]] and not sensitive
        async with gate:
            began = time.perf_counter()
            try:
                response = await client.post(url + "/v1/chat/completions", json=body, headers=headers)
            except httpx.TransportError as e:
                report.statuses[f"transport:{type(e).__name__}"] += 1
                return
            finally:
                report.latencies.append(time.perf_counter() - began)
                done += 1
                if progress and done % 500 == 0:
                    print(f"  {done}/{total} in {time.perf_counter() - started:.0f} s", flush=True)
        report.statuses[str(response.status_code)] += 1
        ok = response.status_code == 200
        if ok:
            content = str(response.json()["choices"][0]["message"]["content"])
            match = _SERVED.match(content)
            group = match.group(1) if match else "?"
            report.served_by[group] += 1
            if sensitive and group in cloud:
                report.leaks_client_side += 1
            if (response.headers.get("x-biorouter-local-only") == "false") != cloud_allowed:
                report.header_mismatches += 1
        elif not _is_clear_error(response.status_code, response.text):
            report.unclear.append(f"{response.status_code}: {response.text[:200]}")
        if cloud_allowed:
            report.cloud_allowed += 1
            report.cloud_allowed_ok += ok
            if not ok and len(report.failed_samples) < 10:
                report.failed_samples.append(f"{response.status_code}: {response.text[:300]}")
        else:
            report.local_only += 1
            report.local_only_ok += ok

    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits, trust_env=False) as client:
        await asyncio.gather(*(one(client, body, sensitive) for body, sensitive in requests))
    report.seconds = time.perf_counter() - started
    return report


def soak(
    stack: Any,
    profile: Profile,
    *,
    total: int,
    concurrency: int,
    seed: int = 0,
    progress: bool = False,
) -> SoakReport:
    """The whole soak on a started :class:`~biorouter.testing.devstack.DevStack`: chaos, load, and the checks."""
    from biorouter.routing.catalogue import load_litellm_config

    config = load_litellm_config(stack.config_path)
    chat = {d.model_name for d in config.model_list if d.model_info.mode == "chat"}
    cloud = {d.model_name for d in config.model_list if d.locality == "cloud"}
    allow_cloud = {task: profile.routes[task].allow_cloud for task in PROMPTS}
    report = SoakReport(proxy_pid_before=stack.proxy.pid)
    for name in cloud & set(stack.fleet.names):
        stack.fleet[name].set_canary(SENSITIVE_TEXT.pattern)
        stack.fleet[name].reset()
    driver = ChaosDriver(stack.fleet, route_chains(profile, chat, PROMPTS), cloud_groups=cloud, seed=seed)
    driver.start()
    try:
        asyncio.run(
            run_soak(
                stack.proxy.url,
                stack.proxy.master_key,
                total=total,
                concurrency=concurrency,
                allow_cloud=allow_cloud,
                cloud_groups=cloud,
                seed=seed,
                report=report,
                progress=progress,
            )
        )
    finally:
        driver.stop()
        report.incidents = driver.started
        report.chaos_errors = driver.errors
        for name in cloud & set(stack.fleet.names):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                report.canary_hits += int(stack.fleet[name].stats()["canary_hits"])
                stack.fleet[name].set_canary(None)
        report.proxy_pid_after = stack.proxy.pid if stack.proxy.is_running() else None
    return report
