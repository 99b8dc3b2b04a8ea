"""Load against a running proxy while its configuration is reloaded, or its Redis dies and comes back.

The proof runs of issue 8 (``tests/proxy/test_proxy_reload.py``, ``tests/proxy/test_proxy_redis_outage.py``,
``bench/reload_under_load.py``, ``bench/redis_outage.py``) share this driver, so the short default
tests and the full benchmarks measure the same thing at different sizes:

* :func:`drive` sends ``total`` chat requests with ``concurrency`` workers and keeps, for each, its
  status and the decision headers (group, fallbacks, generation, degraded) and which stand-in answered.
* :func:`reload_under_load` applies profile and utterance edits while :func:`drive` runs, half of
  them invalid, each followed by ``POST /biorouter/reload`` or SIGHUP, and checks every answer
  against the configuration of the generation that decided it.
* :func:`redis_outage` kills the ledger's ``redis-server`` mid-run and starts it again.

Everything runs on loopback against stand-ins; nothing here calls a real model.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

if TYPE_CHECKING:
    from biorouter.testing.devstack import ProxyProcess

__all__ = [
    "Edit",
    "LoadResult",
    "Outcome",
    "RedisOutageReport",
    "ReloadReport",
    "drive",
    "make_home",
    "redis_outage",
    "reload_edits",
    "reload_under_load",
    "scenario_proxy",
]

PROFILE = "development"
TASK = "code_generation"  # the route the edits move around
_SERVED = re.compile(r"^\[([^\]]+)\]")


def make_home(folder: Path, root: Path, *, encoder_api_base: str) -> Path:
    """A private ``BIOROUTER_HOME``: copies of profiles/ and utterances/ (edited freely), the stand-in encoder.

    The encoder is the deterministic ``/v1/embeddings`` of a stand-in (declared local), so a proxy
    starts and rebuilds its index in a second; routes are chosen with task hints. Its vectors are
    not a model's, so the classifier's top task is arbitrary and may be a local-only one (a hint
    never lifts that): the edited route therefore lists local groups only, and is decided the same
    either way.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = yaml.safe_load((root / "biorouter.yaml").read_text(encoding="utf-8"))
    settings["classifier"]["encoder"] = {
        "kind": "openai-compatible",
        "model": "standin",
        "api_base": encoder_api_base,
        "locality": "local",
    }
    settings["cache_dir"] = str(folder / ".cache")
    (folder / "biorouter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    shutil.copytree(root / "profiles", folder / "profiles")
    shutil.copytree(root / "utterances", folder / "utterances")
    (folder / "litellm_config").symlink_to(root / "litellm_config")
    _set_route(ROUTES[-1])(folder)
    return folder


CLOUD = "deepseek-v3"
CLOUD_PRICES = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002}


def scenario_proxy(
    run_dir: Path,
    root: Path,
    standin_config_path: Path,
    *,
    encoder_api_base: str,
    redis_url: str | None = None,
    litellm_redis_port: int | None = None,
) -> tuple[ProxyProcess, Path]:
    """A proxy (not started) over a stand-in config, with its own home in ``run_dir``.

    With ``redis_url`` the ledger is that Redis, and the cloud stand-in gets prices so cloud
    requests reserve and settle real amounts. ``litellm_redis_port`` also points LiteLLM's own
    router state (cooldowns, usage) at a Redis on 127.0.0.1, to show that an outage spares it too.
    """
    from biorouter.testing.devstack import ProxyProcess

    home = make_home(run_dir / "home", root, encoder_api_base=encoder_api_base)
    config = yaml.safe_load(standin_config_path.read_text(encoding="utf-8"))
    if redis_url is not None:
        for deployment in config["model_list"]:
            if deployment["model_name"] == CLOUD:
                deployment["model_info"].update(CLOUD_PRICES)
    if litellm_redis_port is not None:
        config.setdefault("router_settings", {}).update(redis_host="127.0.0.1", redis_port=litellm_redis_port)
    path = run_dir / "litellm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {
        "BIOROUTER_HOME": str(home),
        "BIOROUTER_PROFILE": PROFILE,
        "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl"),
        "BIOROUTER_DEBUG_ROUTING": "1",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return ProxyProcess(path, env=env, log_path=run_dir / "proxy.log"), home


# -- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request's answer: HTTP status, the decision headers, and the stand-in that answered."""

    index: int
    status: int
    seconds: float
    group: str = ""
    fallbacks: str = ""
    generation: int | None = None
    degraded: str = ""
    served: str | None = None
    error: str | None = None
    at: float = 0.0  # time.monotonic() when the answer arrived


@dataclass
class LoadResult:
    outcomes: list[Outcome]
    seconds: float

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def latency_ms(self, quantile: float) -> float:
        times = sorted(o.seconds for o in self.outcomes)
        return 1000 * times[min(len(times) - 1, int(quantile * len(times)))] if times else 0.0


@dataclass
class Progress:
    """How many requests have finished, for a scenario that acts at fractions of a run."""

    done: int = 0
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def step(self) -> None:
        self.done += 1
        for target, future in list(self._waiters):
            if self.done >= target and not future.done():
                future.set_result(None)

    async def reach(self, target: int) -> None:
        if self.done >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future


def chat_body(index: int, task: str = TASK) -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [{"role": "user", "content": f"write a snakemake rule that aligns reads with bwa (run {index})"}],
        "max_tokens": 50,
        "metadata": {"biorouter_task": task},
    }


async def drive(
    url: str,
    key: str,
    total: int,
    concurrency: int,
    *,
    body: Callable[[int], dict[str, Any]] = chat_body,
    progress: Progress | None = None,
    timeout_s: float = 60,
) -> LoadResult:
    """Send ``total`` chat requests, ``concurrency`` at a time; never raises for a failed request."""
    progress = progress or Progress()
    counter = iter(range(total))
    outcomes: list[Outcome] = []
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, index: int) -> Outcome:
        started = time.perf_counter()
        try:
            response = await client.post("/v1/chat/completions", json=body(index), headers=headers)
        except httpx.HTTPError as e:
            return Outcome(
                index, 0, time.perf_counter() - started, error=f"{type(e).__name__}: {e}", at=time.monotonic()
            )
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            return Outcome(index, response.status_code, seconds, error=response.text[:500], at=time.monotonic())
        text = str(response.json()["choices"][0]["message"]["content"] or "")
        match = _SERVED.match(text)
        generation = response.headers.get("x-biorouter-generation")
        return Outcome(
            index,
            200,
            seconds,
            group=response.headers.get("x-biorouter-group", ""),
            fallbacks=response.headers.get("x-biorouter-fallbacks", ""),
            generation=int(generation) if generation else None,
            degraded=response.headers.get("x-biorouter-degraded", ""),
            served=match.group(1) if match else None,
            at=time.monotonic(),
        )

    async def worker(client: httpx.AsyncClient) -> None:
        for index in counter:
            outcomes.append(await one(client, index))
            progress.step()

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return LoadResult(sorted(outcomes, key=lambda o: o.index), time.perf_counter() - started)


# -- reload under load --------------------------------------------------------------------------

Route = tuple[str, tuple[str, ...]]  # group, fallbacks


@dataclass(frozen=True)
class Edit:
    """One change to the configuration files: valid (``route`` is what it sets) or invalid (``expect`` in the error)."""

    name: str
    apply: Callable[[Path], None]
    route: Route | None = None
    expect: str = ""

    @property
    def valid(self) -> bool:
        return self.route is not None


def _edit_profile(change: Callable[[dict[str, Any]], None], name: str = PROFILE) -> Callable[[Path], None]:
    def apply(home: Path) -> None:
        path = home / "profiles" / f"{name}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    return apply


def _set_route(route: Route, utterance: str | None = None) -> Callable[[Path], None]:
    group, fallbacks = route
    profile = _edit_profile(lambda p: p["routes"].update({TASK: {"group": group, "fallbacks": list(fallbacks)}}))

    def apply(home: Path) -> None:
        profile(home)
        if utterance is not None:  # an utterance edit too: the classifier is rebuilt in the same swap
            path = home / "utterances" / "math_statistics.txt"
            line = f"{utterance} (batch {uuid.uuid4().hex[:8]})"  # a line the file does not have yet
            path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")

    return apply


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def apply(home: Path) -> None:
        (home / relative).write_text(text, encoding="utf-8")

    return apply


ROUTES: tuple[Route, ...] = (
    ("t4-math", ("t4-generalist",)),
    ("t4-generalist", ("t4-coder",)),
    ("t4-coder", ("t4-generalist",)),  # where make_home starts
)

INVALID: tuple[Edit, ...] = (
    Edit(
        "typo in a key",
        _edit_profile(lambda p: p["routes"][TASK].update(fallbaks=["t4-generalist"])),
        expect="routes -> code_generation -> fallbaks",
    ),
    Edit(
        "unknown group",
        _edit_profile(lambda p: p["routes"][TASK].update(group="t4-codr")),
        expect="unknown group 't4-codr'",
    ),
    Edit(
        "bad regex",
        _edit_profile(lambda p: p["governance"]["sensitive_patterns"].append({"name": "broken", "regex": "SMP-(\\d+"})),
        expect="governance -> sensitive_patterns",
    ),
    Edit(
        "cloud group on a local-only route",
        _edit_profile(lambda p: p["routes"]["biomedical"].update(group="deepseek-v3")),
        expect="'deepseek-v3' is a cloud group but the route sets allow_cloud: false",
    ),
    Edit("YAML syntax error", _write(f"profiles/{PROFILE}.yaml", "routes: [unclosed\n"), expect=f"{PROFILE}.yaml"),
    Edit(
        "another profile broken",
        _edit_profile(lambda p: p.update(priorty=3), name="h100_local"),
        expect="h100_local.yaml: priorty",
    ),
    Edit(
        "too few utterances",
        _write("utterances/safety.txt", "is this prompt an injection attempt?\n"),
        expect="utterances/safety.txt: has 1 utterances",
    ),
    Edit(
        "route for a task without utterances",
        _edit_profile(lambda p: p["routes"].update(protein_folding={"group": "t4-generalist"})),
        expect="no utterances/protein_folding.txt",
    ),
    Edit(
        "fallbacks not a list",
        _edit_profile(lambda p: p["routes"][TASK].update(fallbacks="t4-generalist")),
        expect="routes -> code_generation -> fallbacks",
    ),
    Edit(
        "unknown fallback group",
        _edit_profile(lambda p: p["routes"][TASK].update(fallbacks=["t4-generalist", "gpt-5-turbo"])),
        expect="unknown group 'gpt-5-turbo'",
    ),
)


def reload_edits(count: int) -> list[Edit]:
    """``count`` edits alternating valid and invalid; valid ones cycle the route, one also edits utterances."""
    edits: list[Edit] = []
    for n in range(count):
        if n % 2 == 0:
            route = ROUTES[(n // 2) % len(ROUTES)]
            utterance = f"estimate the dispersion of replicate {n} with a negative binomial fit" if n == 2 else None
            name = f"route -> {route[0]}" + (" + utterance" if utterance else "")
            edits.append(Edit(name, _set_route(route, utterance), route=route))
        else:
            edits.append(INVALID[(n // 2) % len(INVALID)])
    return edits


@dataclass
class EditResult:
    name: str
    valid: bool
    trigger: str
    outcome: str
    generation: int
    problems: tuple[str, ...]
    expected_found: bool
    seconds: float


@dataclass
class ReloadReport:
    load: LoadResult
    edits: list[EditResult]
    generation_routes: dict[int, Route]
    inconsistent: list[Outcome]  # decision headers not matching their generation's route, or another stand-in

    @property
    def failed(self) -> list[Outcome]:
        return self.load.failed

    def summary(self) -> dict[str, Any]:
        valid = [e for e in self.edits if e.valid]
        invalid = [e for e in self.edits if not e.valid]
        generations = sorted({o.generation for o in self.load.outcomes if o.generation is not None})
        return {
            "requests": len(self.load.outcomes),
            "failed": len(self.failed),
            "seconds": round(self.load.seconds, 2),
            "requests_per_s": round(len(self.load.outcomes) / self.load.seconds, 1) if self.load.seconds else 0,
            "p50_ms": round(self.load.latency_ms(0.5), 1),
            "p99_ms": round(self.load.latency_ms(0.99), 1),
            "edits": len(self.edits),
            "valid_applied": sum(e.outcome == "ok" for e in valid),
            "valid": len(valid),
            "invalid_rejected_with_error": sum(e.outcome == "rejected" and e.expected_found for e in invalid),
            "invalid": len(invalid),
            "generations_seen": generations,
            "inconsistent_responses": len(self.inconsistent),
            "reload_seconds_max": round(max((e.seconds for e in self.edits), default=0.0), 3),
        }


def _snapshot(home: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for sub in ("profiles", "utterances") for p in (home / sub).iterdir() if p.is_file()}


def _restore(home: Path, files: dict[Path, bytes]) -> None:
    for sub in ("profiles", "utterances"):
        for path in (home / sub).iterdir():
            if path.is_file() and path not in files:
                path.unlink()
    for path, content in files.items():
        if path.read_bytes() != content:
            path.write_bytes(content)


async def _status(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/biorouter/status")
    response.raise_for_status()
    payload: dict[str, Any] = response.json()
    return payload


async def _after_attempt(client: httpx.AsyncClient, attempt: int, wait_s: float = 60) -> dict[str, Any]:
    """The status once reload attempt number ``attempt`` has finished (SIGHUP answers nothing)."""
    deadline = time.monotonic() + wait_s
    while True:
        status = await _status(client)
        last = status.get("last_reload")
        if last is not None and last["attempt"] >= attempt:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"reload attempt {attempt} did not finish within {wait_s:g} s")
        await asyncio.sleep(0.05)


async def reload_under_load(
    url: str,
    key: str,
    pid: int,
    home: Path,
    *,
    total: int,
    edits: list[Edit],
    concurrency: int = 12,
) -> ReloadReport:
    """Run ``total`` requests while ``edits`` are applied at even intervals, alternating admin call and SIGHUP.

    After an invalid edit is rejected the files are put back as they were, so the next edit starts
    from the last good configuration.
    """
    admin = httpx.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"})
    progress = Progress()
    start = await _status(admin)
    base_attempt = (start.get("last_reload") or {}).get("attempt", 0)
    profile = yaml.safe_load((home / "profiles" / f"{PROFILE}.yaml").read_text(encoding="utf-8"))
    route = profile["routes"][TASK]
    routes: dict[int, Route] = {start["generation"]: (route["group"], tuple(route.get("fallbacks") or ()))}
    results: list[EditResult] = []

    async def editor() -> None:
        for n, edit in enumerate(edits):
            await progress.reach((n + 1) * total // (len(edits) + 1))
            good = _snapshot(home)
            edit.apply(home)
            trigger = "admin" if n % 2 == 0 else "SIGHUP"
            started = time.perf_counter()
            if trigger == "admin":
                response = await admin.post("/biorouter/reload", json={"reason": edit.name})
                seconds = time.perf_counter() - started
                status = await _status(admin)
                if response.status_code not in (200, 400):
                    raise RuntimeError(f"reload answered HTTP {response.status_code}: {response.text[:300]}")
            else:
                os.kill(pid, signal.SIGHUP)
                status = await _after_attempt(admin, base_attempt + n + 1)
                seconds = time.perf_counter() - started
            last = status["last_reload"]
            problems = tuple(last["problems"])
            if trigger == "admin" and response.status_code == 400:
                problems = tuple(line.strip() for line in response.json()["detail"].splitlines()[1:])
            if last["outcome"] == "ok" and edit.route is not None:
                routes[status["generation"]] = edit.route
            if last["outcome"] != "ok":
                _restore(home, good)
            found = bool(edit.expect) and any(edit.expect in p for p in problems)
            results.append(
                EditResult(
                    edit.name, edit.valid, trigger, last["outcome"], status["generation"], problems, found, seconds
                )
            )

    try:
        load, _ = await asyncio.gather(drive(url, key, total, concurrency, progress=progress), editor())
    finally:
        await admin.aclose()
    inconsistent = [
        o
        for o in load.outcomes
        if o.status == 200
        and (
            o.generation not in routes
            or (o.group, tuple(filter(None, o.fallbacks.split(",")))) != routes[o.generation]
            or o.served != o.group
        )
    ]
    return ReloadReport(load, results, routes, inconsistent)


# -- Redis outage -------------------------------------------------------------------------------


@dataclass
class RedisOutageReport:
    load: LoadResult
    killed_at: int  # requests finished when redis-server was killed
    restarted_at: int
    outage_s: float
    recovered_after_s: float | None  # from the restart until a request was decided without "ledger:unavailable"

    def summary(self) -> dict[str, Any]:
        outcomes = self.load.outcomes
        degraded = [o for o in outcomes if "ledger:unavailable" in o.degraded]
        return {
            "requests": len(outcomes),
            "failed": len(self.load.failed),
            "seconds": round(self.load.seconds, 2),
            "p50_ms": round(self.load.latency_ms(0.5), 1),
            "p99_ms": round(self.load.latency_ms(0.99), 1),
            "redis_down_s": round(self.outage_s, 2),
            "decided_degraded": len(degraded),
            "cloud_served": sum(o.served == "deepseek-v3" for o in outcomes),
            "cloud_served_while_degraded": sum(o.served == "deepseek-v3" for o in degraded),
            "recovered_after_restart_s": None if self.recovered_after_s is None else round(self.recovered_after_s, 2),
        }


async def redis_outage(
    url: str,
    key: str,
    *,
    kill: Callable[[], object],
    restart: Callable[[], object],
    total: int,
    concurrency: int = 12,
    body: Callable[[int], dict[str, Any]] | None = None,
    recovery_timeout: float = 30,
    min_outage_s: float = 3.0,
) -> RedisOutageReport:
    """Kill Redis after a third of the run and start it again after two thirds; then wait for recovery.

    Redis stays down at least ``min_outage_s`` (longer than the ledger's 2 s retry interval), so
    even a short run sees the ledger probe a dead Redis and fall back more than once.
    """
    progress = Progress()
    marks: dict[str, float | int] = {}
    if body is None:
        body = cloud_and_local_body

    async def chaos() -> None:
        await progress.reach(total // 3)
        marks["killed_at"], marks["killed"] = progress.done, time.monotonic()
        await asyncio.to_thread(kill)
        await progress.reach(2 * total // 3)
        await asyncio.sleep(max(0.0, min_outage_s - (time.monotonic() - float(marks["killed"]))))
        await asyncio.to_thread(restart)
        marks["restarted_at"], marks["restarted"] = progress.done, time.monotonic()

    load, _ = await asyncio.gather(drive(url, key, total, concurrency, body=body, progress=progress), chaos())
    restarted = float(marks["restarted"])
    whole = [o.at for o in load.outcomes if o.status == 200 and o.at > restarted and "ledger" not in o.degraded]
    recovered = min(whole) if whole else await _until_not_degraded(url, key, body, recovery_timeout)
    return RedisOutageReport(
        load,
        int(marks["killed_at"]),
        int(marks["restarted_at"]),
        restarted - float(marks["killed"]),
        None if recovered is None else recovered - restarted,
    )


def cloud_and_local_body(index: int) -> dict[str, Any]:
    """Every other request takes a cloud route (orchestration: priced, reserved in the ledger), the rest local."""
    task = "orchestration" if index % 2 else TASK
    return {
        "model": "auto",
        "messages": [{"role": "user", "content": f"coordinate the agents for the nightly run {index}"}],
        "max_tokens": 50,
        "metadata": {"biorouter_task": task},
    }


async def _until_not_degraded(url: str, key: str, body: Callable[[int], dict[str, Any]], wait_s: float) -> float | None:
    deadline = time.monotonic() + wait_s
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        while time.monotonic() < deadline:
            response = await client.post("/v1/chat/completions", json=body(1))
            if response.status_code == 200 and "ledger" not in response.headers.get("x-biorouter-degraded", ""):
                return time.monotonic()
            await asyncio.sleep(0.2)
    return None


def run(coroutine: Awaitable[Any]) -> Any:
    """``asyncio.run`` for a ready coroutine (bench scripts)."""

    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())
