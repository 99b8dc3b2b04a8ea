"""``BioRouter``: the loaded configuration plus a LiteLLM router, for in-process use.

One instance is one session: the settings, the active profile, the deployment catalogue and the
task classifier are fixed when it is built. ``biorouter.acompletion()`` uses a default instance
built on first use from ``biorouter.yaml``; applications that want several (tests, notebooks
comparing profiles) build their own.

The proxy hook reuses :meth:`BioRouter.aroute` with the proxy's own router, so both entry points
share the decision path; only :meth:`acompletion` needs a ``litellm.Router`` of its own.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from biorouter import decision_log, metrics, offline
from biorouter.adapter import gather_signals, litellm_arguments, prompt_tokens, requested_max_tokens, task_hint
from biorouter.audit import AuditLog, AuditRecord
from biorouter.budget import BudgetKeeper
from biorouter.catalogue import Catalogue, Deployment, LiteLLMConfig, load_litellm_config, parse_model_list
from biorouter.classifier import TaskClassifier
from biorouter.decision import AUTO_MODELS, BudgetView, Decision, Signals
from biorouter.errors import ConfigError, KeptLocalError, Problem
from biorouter.ledger import BudgetScope, Denial, Ledger, Reservation, ledger_from_url
from biorouter.policy import decide
from biorouter.profiles import Profile, load_profiles
from biorouter.request_view import view_request
from biorouter.resources import Resources
from biorouter.selection import AUTO_PROFILE, Selection, select_profile
from biorouter.session import Session, response_cost
from biorouter.settings import Settings, load_settings

__all__ = ["BioRouter", "default_router", "reset_default_router"]

logger = logging.getLogger("biorouter")

_ROUTER_SETTING_KEYS = (
    "num_retries",
    "timeout",
    "allowed_fails",
    "cooldown_time",
    "retry_after",
    "fallbacks",
    "context_window_fallbacks",
    "default_fallbacks",
    "routing_strategy",
    "redis_host",
    "redis_port",
    "redis_password",
    "cache_responses",
)


class BioRouter:
    """Routes chat requests by task under one profile, through a LiteLLM router."""

    def __init__(
        self,
        *,
        settings: Settings,
        profile: Profile,
        catalogue: Catalogue,
        classifier: TaskClassifier,
        litellm_config: LiteLLMConfig | None = None,
        selection: Selection | None = None,
        deployments: Sequence[Deployment] = (),
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.catalogue = catalogue
        self.classifier = classifier
        self.detector = profile.governance.detector()
        self.ledger = ledger or ledger_from_url(settings.ledger.url, fail_mode=profile.costs.ledger_unavailable)
        self.budget = BudgetKeeper(self.ledger, deployments, catalogue)
        self.selection = selection
        self.session = Session(
            profile.name,
            selected=selection.describe() if selection else "chosen explicitly",
            warnings=selection.warnings if selection else (),
        )
        for warning in self.session.warnings:
            logger.warning("biorouter: %s", warning)
        audit_path = settings.audit_log_path
        self.audit = AuditLog(audit_path) if audit_path is not None else None
        self._litellm_config = litellm_config
        self._router: Any | None = None
        self._router_lock = threading.Lock()
        self._metrics_port = settings.metrics.resolved_port()  # a bad BIOROUTER_METRICS_PORT fails here, loudly
        self._metrics_started = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        profile: str | None = None,
        litellm_config: Path | None = None,
        model_list: list[Mapping[str, Any]] | None = None,
        encoder: Any | None = None,
        classifier: TaskClassifier | None = None,
        resources: Resources | None = None,
    ) -> BioRouter:
        """Load profiles, utterances and the deployment list, and choose the profile; nothing is embedded yet.

        ``profile`` (else ``BIOROUTER_PROFILE``, else ``profile:`` in biorouter.yaml) names the profile;
        ``auto`` selects the best fit for this machine. Either way the machine is detected once
        (or ``resources`` is used) so an explicit choice warns about needs it does not meet.
        ``model_list`` (the proxy's live list) replaces reading ``litellm_config`` from disk;
        ``classifier`` shares an already built (or loaded) classifier instead of making one.
        """
        settings = settings or load_settings()
        profiles = load_profiles(settings.profiles_path, display_root=settings.home)
        name = profile or settings.active_profile
        if name != AUTO_PROFILE and name not in profiles:
            raise ConfigError(
                [Problem("profile", (), f"unknown profile '{name}' (available: {', '.join(sorted(profiles))})")]
            )
        config = None
        if model_list is not None:
            parsed = parse_model_list(model_list)
        else:
            config = load_litellm_config(litellm_config or settings.litellm_config_path)
            parsed = list(config.model_list)
        catalogue = Catalogue.from_deployments(parsed)
        deployments: list[Mapping[str, Any]] = [d.model_dump(mode="json") for d in parsed]
        if resources is None:
            resources = detect_blocking(settings, deployments, profiles)
        selection = select_profile(profiles, resources, explicit=name)
        logger.info("biorouter %s", selection.describe())
        if classifier is None:
            classifier = TaskClassifier.from_settings(settings, encoder=encoder)
        return cls(
            settings=settings,
            profile=profiles[selection.profile],
            catalogue=catalogue,
            classifier=classifier,
            litellm_config=config,
            selection=selection,
            deployments=parsed,
        )

    def close(self) -> None:
        """End the session: log its summary (requests, errors, refusals, cost per group)."""
        self.session.log_summary()

    def switch_profile(self, name: str, *, reason: str, by: str = "python") -> Profile:
        """Make ``name`` the active profile from now on: an explicit, logged change with a reason.

        The profile file is read again, so an edited profile can be activated without a restart.
        In-flight requests finish under the profile they were decided with.
        """
        profiles = load_profiles(self.settings.profiles_path, display_root=self.settings.home)
        if name not in profiles:
            raise ConfigError(
                [Problem("profile", (), f"unknown profile '{name}' (available: {', '.join(sorted(profiles))})")]
            )
        new = profiles[name]
        detector = new.governance.detector()
        self.session.switch(name, reason=reason, by=by)
        self.profile, self.detector = new, detector
        return new

    async def aroute(
        self, messages: Any, model: str = "auto", *, task: str | None = None, request: Mapping[str, Any] | None = None
    ) -> Decision:
        """Decide where a request goes without calling any upstream (and without reserving budget).

        ``task`` is the client's own task label (``metadata.biorouter_task``): it picks the route
        but never lifts a local-only rule.
        """
        decision, signals, _, _, timings = await self._decide(messages, model, task, request or {})
        self._observe(decision, signals, timings, request or {})
        return decision

    async def _decide(
        self, messages: Any, model: str, task: str | None, request: Mapping[str, Any]
    ) -> tuple[Decision, Signals, BudgetView, list[BudgetScope], dict[str, float]]:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        view = view_request(messages)
        max_tokens = requested_max_tokens(request)  # a malformed one is a 400 before any work
        named_cloud = model not in AUTO_MODELS and model in self.catalogue.groups and not self.catalogue.is_local(model)
        signals = await gather_signals(
            view, model, self.classifier, detector=self.detector, classify_named=named_cloud, hint=task, timings=timings
        )
        tokens = prompt_tokens(view, messages, self._count_tokens_above(max_tokens))
        if tokens is not None or max_tokens is not None:
            signals = signals.model_copy(update={"prompt_tokens": tokens, "max_tokens": max_tokens})
        named = {"model": model} if model not in AUTO_MODELS else {}
        budget_started = time.perf_counter()
        budget, scopes = await self.budget.view(self.profile, signals, messages, {**request, **named})
        timings["budget"] = time.perf_counter() - budget_started
        decision = decide(signals, self.profile, self.catalogue, budget)
        timings["decision"] = time.perf_counter() - started
        return decision, signals, budget, scopes, timings

    def _count_tokens_above(self, max_tokens: int | None) -> int | None:
        """Prompt size (an upper bound in tokens) above which a context window could be too small."""
        windows = [group.max_input_tokens for group in self.catalogue.groups.values() if group.max_input_tokens]
        if not windows:
            return None
        routes = (self.profile.default_route, *self.profile.routes.values())
        completion = max_tokens if max_tokens is not None else max(route.max_tokens or 0 for route in routes)
        return min(windows) - completion

    def _observe(
        self, decision: Decision, signals: Signals, timings: Mapping[str, float], request: Mapping[str, Any]
    ) -> None:
        """Count and time the decision (Prometheus); with ``BIOROUTER_DEBUG_ROUTING=1``, log it as JSON."""
        source: metrics.TaskSource = "none" if decision.task is None else "hint" if signals.task_hint else "classifier"
        metrics.record_decision(decision, task_source=source, seconds=timings["decision"])
        if "classify" in timings:
            metrics.record_classification(timings["classify"])
        request_id = str(request.get("litellm_call_id") or "-")
        decision_log.log_decision(decision, request_id=request_id, task_source=source, timings=timings)

    async def prepare(
        self, messages: Any, model: str, request: Mapping[str, Any]
    ) -> tuple[Decision, Reservation | None, list[BudgetScope]]:
        """Decide and reserve the request's estimated cloud cost; a denied reservation downgrades to local.

        Shared by :meth:`acompletion` and the proxy hook. The caller settles or releases the
        reservation after the call (:attr:`budget`).
        """
        decision, signals, budget, scopes, timings = await self._decide(messages, model, task_hint(request), request)
        held = await self.budget.reserve(decision, budget, scopes)
        if isinstance(held, Denial):  # another request took the last of the budget since the view was read
            budget = budget.model_copy(update={"cloud_blocked": held.message()})
            decision = decide(signals, self.profile, self.catalogue, budget)
            held = await self.budget.reserve(decision, budget, scopes)
            if isinstance(held, Denial):  # cannot happen: a decision without cloud groups reserves nothing
                held = None
        self._observe(decision, signals, timings, request)
        return decision, held, scopes

    def record(self, decision: Decision, request_id: str, **outcome: Any) -> None:
        """Append the audit record of a local-only decision (others are not audited); count a refusal."""
        if outcome.get("outcome") == "refused":
            metrics.record_refusal(decision.profile, decision.local_only_rules, stage="after_call")
        if self.audit is not None and decision.local_only:
            self.audit.write(AuditRecord.from_decision(decision, request_id=request_id, **outcome))

    @property
    def router(self) -> Any:
        """The ``litellm.Router`` built from ``litellm_config`` on first use."""
        if self._router is None:
            with self._router_lock:
                if self._router is None:
                    self._router = self._build_router()
        return self._router

    def _build_router(self) -> Any:
        if self._litellm_config is None:
            raise ConfigError([Problem("litellm_config", (), "this BioRouter was built without a config file")])
        offline.apply()
        from litellm.router import Router

        config = self._litellm_config
        from biorouter.guard import ensure_guard_registered

        ensure_guard_registered()  # the second wall: drops cloud deployments of local-only requests per hop
        config = self._litellm_config
        settings = {k: v for k, v in config.router_settings.items() if k in _ROUTER_SETTING_KEYS}
        model_list = [d.model_dump(mode="json", exclude_none=True) for d in config.model_list]
        return Router(model_list=model_list, **settings)

    async def acompletion(self, messages: Any, model: str = "auto", **kwargs: Any) -> Any:
        """Route and call: returns LiteLLM's response with the Decision in ``_hidden_params``.

        Raises :class:`KeptLocalError` when a local-only request cannot be served locally (no local
        group, or every local deployment failed): it is refused, never sent to the cloud.
        """
        request = {"messages": messages, **kwargs}
        request_id = str(request.setdefault("litellm_call_id", str(uuid.uuid4())))
        if not self._metrics_started:  # a process serving requests, not a CLI command that only decides
            self._metrics_started = True
            metrics.serve(self._metrics_port, self.settings.metrics.host)
        decision, held, scopes = await self._prepare_or_record(messages, model, request, request_id)
        logger.info(decision.log_line())
        arguments = {**request, **litellm_arguments(decision, request, self.profile)}
        started = time.perf_counter()
        try:
            response = await self.router.acompletion(**arguments)
        except Exception as e:
            await self.budget.release(held)
            self.session.record(task=decision.task, group=decision.group, ok=False, refused=decision.local_only)
            if not decision.local_only:
                raise
            refusal = decision.kept_local(e)
            logger.warning("biorouter refused a local-only request %s: %s", request_id, refusal)
            self.record(decision, request_id, outcome="refused", error=str(refusal))
            raise refusal from e
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            hidden["biorouter"] = decision
            served = served_by(hidden, self.router)
            group = served["group"] or decision.group
            metrics.record_served(decision.profile, decision.group, group)
            # A stream's cost is known only at its end: count its estimate (an upper bound) instead.
            cost = (held.estimate_usd if held else 0.0) if request.get("stream") else response_cost(hidden)
            self.session.record(task=decision.task, group=group, ok=True, cost_usd=cost)
            await self.budget.settle(
                held,
                scopes,
                decision=decision,
                group=group,
                cost_usd=cost,
                seconds=time.perf_counter() - started,
                user=request.get("user"),
            )
            self.record(decision, request_id, outcome="served", **served)
        else:
            await self.budget.release(held)
        return response

    async def _prepare_or_record(
        self, messages: Any, model: str, request: Mapping[str, Any], request_id: str
    ) -> tuple[Decision, Reservation | None, list[BudgetScope]]:
        try:
            return await self.prepare(messages, model, request)
        except KeptLocalError as e:
            self.record_refusal(e, request_id)
            raise

    def record_refusal(self, error: KeptLocalError, request_id: str) -> None:
        """A local-only request refused before any call: log, count and audit it (both entry points)."""
        logger.warning("biorouter refused a local-only request %s: %s", request_id, error)
        self.session.record(task=None, group=None, ok=False, refused=True)
        metrics.record_refusal(self.profile.name, error.rules, stage="before_call")
        if self.audit is not None:
            record = AuditRecord.refusal(
                profile=self.profile.name, request_id=request_id, rules=error.rules, error=str(error)
            )
            self.audit.write(record)


def detect_blocking(
    settings: Settings, deployments: list[Mapping[str, Any]], profiles: Mapping[str, Profile]
) -> Resources:
    """Detect the machine, also when called from code already running an event loop (in a worker thread)."""
    from biorouter.resources import detect

    def run() -> Resources:
        return detect(settings, model_list=deployments, profiles=profiles)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def served_by(hidden: Mapping[str, Any], router: Any) -> dict[str, Any]:
    """Group, deployment id, api_base and locality of the deployment that answered."""
    deployment_id = hidden.get("model_id")
    deployment = router.get_deployment(model_id=deployment_id) if deployment_id else None
    info = deployment.model_info if deployment is not None else None
    locality = getattr(info, "locality", None) if info is not None else None
    if info is not None and locality is None and hasattr(info, "get"):
        locality = info.get("locality")
    return {
        "group": deployment.model_name if deployment is not None else None,
        "deployment_id": deployment_id,
        "api_base": hidden.get("api_base"),
        "locality": "local" if locality == "local" else "cloud",
    }


_default: BioRouter | None = None
_default_lock = threading.Lock()


def default_router() -> BioRouter:
    """The process-wide instance behind ``biorouter.acompletion()``, built once."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = BioRouter.from_settings()
                atexit.register(_default.close)
    return _default


def reset_default_router() -> None:
    """Forget the default instance (after editing files, or between tests)."""
    global _default
    with _default_lock:
        _default = None
