"""biorouter's own Prometheus metrics, and the small HTTP endpoint that serves them.

What an operator needs to see that LiteLLM's metrics cannot show: which task, group, profile and
mode each decision took and how long deciding took, which governance rules refused requests,
how often a request was served by another group than the one decided (a fallback), and how much
of each budget is spent. Names, labels and a scrape config are in ``docs/operations.md``.

The metrics live in :data:`REGISTRY`, a registry of biorouter's own, never in
``prometheus_client``'s global one: LiteLLM registers its own metrics there, and the two must
neither collide nor be served by each other's endpoint. :func:`serve` starts the endpoint once
per process (the proxy hook at start-up; ``BioRouter`` on its first call); when the port is
taken — several proxy replicas on one host given the same port — it logs a warning naming the
port and the process keeps serving requests without it.

With several proxy workers, ``PROMETHEUS_MULTIPROC_DIR`` (``biorouter serve`` sets it) puts
prometheus_client in its multiprocess mode: every worker writes its samples to files there, and
both endpoints read the sum over the workers (gauges: the maximum), whichever worker answers.
Only ``biorouter_*`` families are served from that folder, so LiteLLM's own metrics (which use the
same folder when its prometheus callback is on) stay on LiteLLM's endpoint.

Recording is on the request path (the whole decision targets 5 ms at p50), so each ``record_*``
function is a label lookup and an increment, costs a few microseconds, and never raises: a broken
metric must not fail a request.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal, ParamSpec

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

    from biorouter.costs.ledger import BudgetScope, ScopeUsage
    from biorouter.routing.decision import Decision

__all__ = [
    "REGISTRY",
    "RefusalStage",
    "TaskSource",
    "exposition",
    "record_budget_settled",
    "record_budget_usage",
    "record_classification",
    "record_classifier_fallback",
    "record_decision",
    "record_degraded",
    "record_detector_unavailable",
    "record_generation",
    "record_refusal",
    "record_reload",
    "record_served",
    "serve",
    "serving_port",
    "stop",
]

logger = logging.getLogger("biorouter.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
"""Every biorouter metric, and nothing else."""

# 0.5 ms .. 1 s: the decision's budget is a few milliseconds, so the fine buckets sit there.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

TaskSource = Literal["classifier", "hint", "none"]  # "hint": the client named it (metadata.biorouter_task)
RefusalStage = Literal["before_call", "after_call", "guard"]
NONE = "none"  # label value for an absent task

DECISIONS = Counter(
    "biorouter_decisions",
    "Routing decisions taken, by profile, mode (routed/default/passthrough), task, group, where the task came "
    "from (classifier/hint/none) and whether the request was local-only",
    ("profile", "mode", "task", "group", "task_source", "local_only"),
    registry=REGISTRY,
)
DECISION_SECONDS = Histogram(
    "biorouter_decision_seconds",
    "Time to decide one request: sensitivity scan, classification, budget view and decide(), by mode",
    ("mode",),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CLASSIFICATION_SECONDS = Histogram(
    "biorouter_classification_seconds",
    "Time the task classifier took for one request (waiting for its batch included)",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REFUSALS = Counter(
    "biorouter_refusals",
    "Local-only requests refused rather than sent to the cloud, by stage: before_call (no local group), "
    "after_call (every local deployment failed) or guard (the guard callback blocked an undecided request)",
    ("profile", "stage"),
    registry=REGISTRY,
)
REFUSAL_RULES = Counter(
    "biorouter_refusal_rules",
    "Rules behind refused requests (route:<task>, content:<detector rule>); a refusal with several rules "
    "counts once under each, so use biorouter_refusals_total for the number of refusals",
    ("profile", "rule"),
    registry=REGISTRY,
)
DETECTOR_UNAVAILABLE = Counter(
    "biorouter_detector_unavailable",
    "Scans in which a sensitivity-detector layer could not load or failed (people, records, identifiers); "
    "each such request was kept local with the rule detector:unavailable",
    ("layer",),
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "biorouter_fallbacks",
    "Requests served by another deployment group than the one decided (LiteLLM took an allowed fallback)",
    ("profile", "decided_group", "served_group"),
    registry=REGISTRY,
)
BUDGET_SPENT = Gauge(
    "biorouter_budget_spent_usd",
    "Spent in the current period of a budget scope, as this process last saw it (the ledger is read on each "
    "routed request and counted up on each settled cost); with several replicas, aggregate with max()",
    ("scope", "period"),
    registry=REGISTRY,
    multiprocess_mode="max",  # several workers: the highest value any of them reports
)
BUDGET_LIMIT = Gauge(
    "biorouter_budget_limit_usd",
    "The limit of a budget scope (USD per period), from the active profile",
    ("scope", "period"),
    registry=REGISTRY,
    multiprocess_mode="max",  # several workers: the highest value any of them reports
)

RELOADS = Counter(
    "biorouter_reloads",
    "Configuration reloads (SIGHUP or POST /biorouter/reload), by outcome: ok (swapped in) or rejected "
    "(invalid files: the last good configuration kept serving)",
    ("outcome",),
    registry=REGISTRY,
)
CONFIG_GENERATION = Gauge(
    "biorouter_config_generation",
    "The configuration generation serving requests (1 at start, +1 per reload or profile switch)",
    registry=REGISTRY,
    multiprocess_mode="max",  # several workers: the highest value any of them reports
)
DEGRADED = Gauge(
    "biorouter_degraded",
    "1 while a component runs in a degraded mode (ledger: Redis unreachable, spend counted in memory), else 0; "
    "updated on each routed request",
    ("component",),
    registry=REGISTRY,
    multiprocess_mode="max",  # several workers: the highest value any of them reports
)
CLASSIFIER_FALLBACKS = Counter(
    "biorouter_classifier_fallbacks",
    "Requests classified by the lexical fallback instead of the embeddings, by reason: load (the encoder could "
    "not be loaded) or request (the encoder failed on this request)",
    ("reason",),
    registry=REGISTRY,
)

P = ParamSpec("P")


def _never_raises(function: Callable[P, None]) -> Callable[P, None]:
    """A failing metric is logged (with its traceback once per function), never raised into a request."""
    warned = False

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        nonlocal warned
        try:
            function(*args, **kwargs)
        except Exception:
            if not warned:
                warned = True
                logger.warning("biorouter metrics: %s failed; the request goes on", function.__name__, exc_info=True)

    return wrapper


@_never_raises
def record_decision(decision: Decision, *, task_source: TaskSource, seconds: float) -> None:
    """Count one decision and how long it took: the mix of tasks and groups, and the routing overhead."""
    DECISIONS.labels(
        decision.profile,
        decision.mode,
        decision.task or NONE,
        decision.group,
        task_source,
        "true" if decision.local_only else "false",
    ).inc()
    DECISION_SECONDS.labels(decision.mode).observe(seconds)


@_never_raises
def record_classification(seconds: float) -> None:
    """Time one classification: the encoder is the costly part of a decision, so it gets its own histogram."""
    CLASSIFICATION_SECONDS.observe(seconds)


@_never_raises
def record_refusal(profile: str, rules: Sequence[str], *, stage: RefusalStage) -> None:
    """Count a refused local-only request, and each rule that kept it local (governance at work, or a local outage)."""
    REFUSALS.labels(profile, stage).inc()
    for rule in rules or ("unknown",):
        REFUSAL_RULES.labels(profile, rule).inc()


@_never_raises
def record_detector_unavailable(layer: str) -> None:
    """Count a scan in which a detector layer was missing (the request was kept local, fail closed)."""
    DETECTOR_UNAVAILABLE.labels(layer).inc()


@_never_raises
def record_served(profile: str, decided_group: str, served_group: str | None) -> None:
    """Count a fallback when the group that answered is not the one decided (a sign the first choice is failing)."""
    if served_group and served_group != decided_group:
        FALLBACKS.labels(profile, decided_group, served_group).inc()


@_never_raises
def record_budget_usage(usages: Iterable[ScopeUsage]) -> None:
    """Set spent and limit per budget scope from a ledger read the request made anyway (no extra round trip)."""
    for usage in usages:
        scope = usage.scope
        BUDGET_SPENT.labels(scope.key, scope.period).set(usage.spent_usd)
        BUDGET_LIMIT.labels(scope.key, scope.period).set(scope.limit_usd)


@_never_raises
def record_budget_settled(scopes: Iterable[BudgetScope], cost_usd: float) -> None:
    """Count a settled cost into the scopes' spent gauges until the next ledger read replaces them."""
    if cost_usd > 0:
        for scope in scopes:
            BUDGET_SPENT.labels(scope.key, scope.period).inc(cost_usd)


@_never_raises
def record_reload(outcome: Literal["ok", "rejected"], generation: int) -> None:
    """Count a reload attempt and show the generation now serving."""
    RELOADS.labels(outcome).inc()
    CONFIG_GENERATION.set(generation)


@_never_raises
def record_generation(generation: int) -> None:
    """Show the configuration generation now serving (after a profile switch)."""
    CONFIG_GENERATION.set(generation)


@_never_raises
def record_degraded(component: str, degraded: bool) -> None:
    """Whether ``component`` (e.g. ``ledger``) is degraded, as the latest request saw it."""
    DEGRADED.labels(component).set(1 if degraded else 0)


@_never_raises
def record_classifier_fallback(reason: str) -> None:
    """Count a request the lexical fallback classified (``reason``: ``load`` or ``request``)."""
    CLASSIFIER_FALLBACKS.labels(reason).inc()


def multiprocess() -> bool:
    """Whether prometheus_client runs in multiprocess mode (samples in files shared by the workers)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _BiorouterFamilies:
    """A collector of the ``biorouter_*`` families summed over every worker's files."""

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.multiprocess import MultiProcessCollector

        for family in MultiProcessCollector(None).collect():  # type: ignore[no-untyped-call]
            if family.name.startswith("biorouter_"):
                yield family


def _served_registry() -> CollectorRegistry:
    """What the endpoints serve: this process's registry, or every worker's biorouter metrics."""
    if not multiprocess():
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_BiorouterFamilies())
    return registry


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type (for the proxy's own route)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(_served_registry()), CONTENT_TYPE_LATEST


_server: WSGIServer | None = None
_server_port: int | None = None
_server_lock = threading.Lock()


def serve(port: int | None, host: str = "127.0.0.1") -> bool:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread, once per process; True when it is served.

    ``None`` means off. A port already in use (another replica on this host got it first) or an
    address that cannot be bound is a warning naming them, never an error: routing goes on.
    """
    global _server, _server_port
    if port is None:
        return False
    with _server_lock:
        if _server is not None:
            if port != _server_port:
                logger.warning(
                    "biorouter metrics: already served on port %s in this process; port %s ignored", _server_port, port
                )
            return port == _server_port
        from prometheus_client import start_http_server

        try:
            server, _ = start_http_server(port, addr=host, registry=_served_registry())
        except OSError as e:
            if multiprocess() and e.errno == errno.EADDRINUSE:  # a sibling worker serves the same (summed) metrics
                logger.info("biorouter metrics: port %s is served by another worker of this proxy", port)
                return False
            logger.warning(
                "biorouter metrics: cannot serve on %s:%s (%s); this process goes on without a metrics endpoint "
                "(give each replica on a host its own BIOROUTER_METRICS_PORT)",
                host,
                port,
                e.strerror or e,
            )
            return False
        _server, _server_port = server, port
    logger.info("biorouter metrics: serving http://%s:%s/metrics", host, port)
    return True


def serving_port() -> int | None:
    """The port this process serves metrics on, if it does."""
    return _server_port


def stop() -> None:
    """Stop serving (tests, or a clean shutdown); the metrics keep their values."""
    global _server, _server_port
    with _server_lock:
        server, _server, _server_port = _server, None, None
    if server is not None:
        server.shutdown()
        server.server_close()
