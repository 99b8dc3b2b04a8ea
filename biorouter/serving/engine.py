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
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biorouter import metrics, offline
from biorouter.classify.classifier import TaskClassifier
from biorouter.costs.budget import BudgetKeeper
from biorouter.costs.ledger import BudgetScope, Denial, Ledger, Reservation
from biorouter.costs.ledger_url import ledger_from_url
from biorouter.errors import ConfigError, KeptLocalError, Problem, RequestError
from biorouter.governance.request_view import check_request, view_request
from biorouter.governance.sensitivity import SensitivityDetector
from biorouter.hardware.resources import Resources
from biorouter.hardware.selection import AUTO_PROFILE, Selection, select_profile
from biorouter.routing.catalogue import Catalogue, Deployment, LiteLLMConfig, load_litellm_config, parse_model_list
from biorouter.routing.complexity import ComplexityConfig, TierExamples, estimate_complexity, read_tier_examples
from biorouter.routing.decision import AUTO_MODELS, BudgetView, Decision, RequestKind, Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Profile, load_profiles
from biorouter.routing.strategies import with_strategy_signals
from biorouter.serving import decision_log
from biorouter.serving.adapter import gather_signals, litellm_arguments, prompt_tokens, requested_max_tokens, task_hint
from biorouter.serving.audit import AuditLog, AuditRecord
from biorouter.serving.orchestrate import serve_in_process, served_by
from biorouter.serving.reload import ReloadRecord, RoutingState, load_state
from biorouter.serving.session import Session, response_cost
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
        # Everything a request routes by, swapped whole by reload()/switch_profile() (biorouter.serving.reload).
        self._state = RoutingState.initial(profile, classifier, catalogue)
        self._swap_lock = threading.Lock()  # held only for the swap itself: never blocks the event loop long
        self._reload_lock = threading.Lock()  # one reload at a time (taken in a worker thread)
        self._reload_attempts = 0
        self.last_reload: ReloadRecord | None = None
        metrics.record_generation(self._state.generation)
        self._tier_cache: dict[tuple[str, str], TierExamples | None] = {}
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

    def switch_profile(self, name: str, *, reason: str, by: str = "python", at: datetime | None = None) -> Profile:
        """Make ``name`` the active profile from now on: an explicit, logged change with a reason.

        The files are read and checked exactly as :meth:`reload` does, the new profile against the
        deployments this router really serves: a profile naming a group they lack is refused with
        :class:`ConfigError` listing every problem, and nothing changes. In-flight requests finish
        under the profile they were decided with. Blocking (validation, changed utterances). ``at``: when
        the change was made, if not now (a proxy worker applying a sibling's switch).
        """
        with self._reload_lock:
            current = self._state
            try:
                state, _ = load_state(current, self.settings, origin="switch", profile=name)
            except ConfigError as e:
                logger.error(
                    "biorouter switch to '%s' refused (%s, by %s); profile '%s' serves on: %s",
                    name,
                    reason,
                    by,
                    current.profile.name,
                    e,
                )
                raise
            with self._swap_lock:
                self._state = state
                self._apply_fail_mode(state.profile)
                self._tier_cache.clear()
        self.session.switch(name, reason=reason, by=by, at=at)
        metrics.record_generation(state.generation)
        return state.profile

    def align_generation(self, generation: int) -> None:
        """Number the serving snapshot ``generation`` (proxy workers keep one numbering across processes)."""
        with self._swap_lock:
            if self._state.generation != generation:
                self._state = dataclasses.replace(self._state, generation=generation)
        metrics.record_generation(generation)

    # -- the configuration snapshot (biorouter.serving.reload) -------------------------------------------

    @property
    def state(self) -> RoutingState:
        """The configuration snapshot serving now; a request takes it once and routes by it throughout."""
        return self._state

    @property
    def profile(self) -> Profile:
        return self._state.profile

    @profile.setter
    def profile(self, value: Profile) -> None:  # Python callers and tests adjust a profile in place
        self._replace("set", profile=value)

    @property
    def detector(self) -> SensitivityDetector:
        return self._state.detector

    @property
    def classifier(self) -> TaskClassifier:
        return self._state.classifier

    @classifier.setter
    def classifier(self, value: TaskClassifier) -> None:
        self._replace("set", classifier=value)

    @property
    def catalogue(self) -> Catalogue:
        return self._state.catalogue

    def _replace(self, origin: str, **parts: Any) -> None:
        with self._swap_lock:
            self._state = self._state.successor(origin, **parts)

    def _apply_fail_mode(self, profile: Profile) -> None:
        """The ledger outlives snapshots; a new profile's ``ledger_unavailable`` applies from now on."""
        if hasattr(self.ledger, "fail_mode"):
            self.ledger.fail_mode = profile.costs.ledger_unavailable

    async def reload(self, *, reason: str = "reload", by: str = "python") -> RoutingState:
        """Re-read profiles/ and utterances/, validate everything, and swap the new snapshot in atomically.

        The checks and messages are those of ``biorouter validate``. An invalid edit raises
        :class:`ConfigError` listing every problem, is logged and counted, and the last good
        snapshot keeps serving. Loading runs in a worker thread (the event loop keeps serving);
        concurrent reloads run one after the other. In-flight requests finish under the snapshot
        they started with.
        """
        return await asyncio.to_thread(self.reload_blocking, reason=reason, by=by)

    def reload_blocking(self, *, reason: str = "reload", by: str = "python") -> RoutingState:
        """:meth:`reload` for scripts and worker threads (blocks while validating and embedding)."""
        with self._reload_lock:
            self._reload_attempts += 1
            started = time.perf_counter()
            try:
                for _ in range(3):  # a profile switch landing mid-reload: load again for the new profile
                    current = self._state
                    state, warnings = load_state(current, self.settings)
                    with self._swap_lock:
                        if self._state is current:
                            self._state = state
                            self._apply_fail_mode(state.profile)
                            self._tier_cache.clear()  # complexity examples (utterances/complexity/) re-read
                            break
                else:
                    raise ConfigError([Problem("reload", (), "the configuration kept changing during the reload")])
            except ConfigError as e:
                self._reloaded(reason, by, started, problems=tuple(str(p) for p in e.problems))
                logger.error(
                    "biorouter reload rejected (%s, by %s); the last good configuration serves on: %s", reason, by, e
                )
                raise
            self._reloaded(reason, by, started, warnings=warnings)
            logger.info(
                "biorouter reloaded (%s, by %s): generation %d, profile '%s'%s",
                reason,
                by,
                state.generation,
                state.profile.name,
                f"; {len(warnings)} warnings" if warnings else "",
            )
            return state

    def _reloaded(
        self, reason: str, by: str, started: float, *, problems: tuple[str, ...] = (), warnings: tuple[str, ...] = ()
    ) -> None:
        state = self._state
        self.last_reload = ReloadRecord(
            attempt=self._reload_attempts,
            at=datetime.now(UTC),
            by=by,
            reason=reason,
            outcome="rejected" if problems else "ok",
            generation=state.generation,
            profile=state.profile.name,
            problems=problems,
            warnings=warnings,
            seconds=round(time.perf_counter() - started, 4),
        )
        metrics.record_reload(self.last_reload.outcome, state.generation)

    def _annotate(self, decision: Decision, state: RoutingState) -> Decision:
        """Stamp the snapshot's generation and any degraded mode on the Decision (and the degraded gauge)."""
        degraded = self.ledger.degraded
        metrics.record_degraded("ledger", degraded)
        update: dict[str, Any] = {"generation": state.generation}
        if degraded:
            update["degraded"] = (*decision.degraded, "ledger:unavailable")
        return decision.model_copy(update=update)

    async def aroute(
        self,
        messages: Any,
        model: str = "auto",
        *,
        task: str | None = None,
        request: Mapping[str, Any] | None = None,
        kind: RequestKind = "chat",
        state: RoutingState | None = None,
    ) -> Decision:
        """Decide where a request goes without calling any upstream (and without reserving budget).

        ``task`` is the client's own task label (``metadata.biorouter_task``): it picks the route
        but never lifts a local-only rule. ``kind="embedding"`` decides for an embeddings request.
        ``state`` is the snapshot the caller took at the request's start (default: the current).
        """
        state = state or self._state
        decision, signals, _, _, timings = await self._decide(messages, model, task, request or {}, state, kind)
        self._observe(decision, signals, timings, request or {})
        return decision

    async def _decide(
        self,
        messages: Any,
        model: str,
        task: str | None,
        request: Mapping[str, Any],
        state: RoutingState,
        kind: RequestKind = "chat",
    ) -> tuple[Decision, Signals, BudgetView, list[BudgetScope], dict[str, float]]:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        view = view_request(messages)
        check_request(view, model, request, task)  # malformed fields are a RequestError (400) before any work
        max_tokens = requested_max_tokens(request)  # a malformed one is a 400 before any work
        catalogue = state.catalogue
        named_cloud = model not in AUTO_MODELS and model in catalogue.groups and not catalogue.is_local(model)
        signals = await gather_signals(
            view,
            model,
            state.classifier,
            detector=state.detector,
            classify_named=named_cloud,
            hint=task,
            timings=timings,
            kind=kind,
        )
        if kind == "chat" and model in AUTO_MODELS:
            signals = await self._with_complexity(view.text, signals, state)
        tokens = prompt_tokens(view, messages, self._count_tokens_above(max_tokens, state))
        if tokens is not None or max_tokens is not None:
            signals = signals.model_copy(update={"prompt_tokens": tokens, "max_tokens": max_tokens})
        signals = with_strategy_signals(signals, request)  # metadata.biorouter_strategy and stream (strategies.py)
        named = {"model": model} if model not in AUTO_MODELS else {}
        budget_started = time.perf_counter()
        budget, scopes = await self.budget.view(state.profile, signals, messages, {**request, **named})
        timings["budget"] = time.perf_counter() - budget_started
        decision = self._annotate(decide(signals, state.profile, catalogue, budget), state)
        timings["decision"] = time.perf_counter() - started
        return decision, signals, budget, scopes, timings

    async def _with_complexity(self, text: str, signals: Signals, state: RoutingState) -> Signals:
        """Signals with the complexity estimate, when the route the request may take lists tiers.

        Only such requests pay for it (the estimate reads the whole text). The examples signal
        reuses the request vector the classifier just computed (a query-cache hit); it is skipped
        when the embeddings did not classify the request, so sensitive text never reaches an
        encoder the classifier itself would not have used.
        """
        profile = state.profile
        if not _may_take_a_tiered_route(signals, profile):
            return signals
        config = profile.complexity
        examples_signal = None
        classifier = state.classifier
        embedded = signals.classifier_error is None and signals.classifier_source != "lexical"  # encoder up
        if signals.task is not None and embedded and classifier.embedder is not None:
            examples = await self._tier_examples(config, classifier.embedder)
            if examples is not None:
                try:
                    vector = await classifier.query_vector(text)
                    examples_signal = examples.signal(vector) if vector is not None else None
                except Exception as e:  # the estimate degrades to the text signals; routing goes on
                    logger.warning("biorouter complexity: examples signal unavailable: %s", e)
        return signals.model_copy(update={"complexity": estimate_complexity(text, config, examples_signal)})

    async def _tier_examples(self, config: ComplexityConfig, embedder: Any) -> TierExamples | None:
        """The profile's tiered example requests, embedded once per folder and encoder (disk-cached)."""
        if config.examples is None:
            return None
        key = (str(config.examples), embedder.fingerprint)  # relative to the home, which an engine keeps
        if key not in self._tier_cache:  # cleared by a reload; a hit costs no filesystem call
            folder = (self.settings.home / config.examples).resolve()
            texts = read_tier_examples(folder)
            if len(texts) < 2:
                logger.warning("biorouter complexity: fewer than two tier files in %s: examples signal off", folder)
                self._tier_cache[key] = None
            else:
                self._tier_cache[key] = await asyncio.to_thread(TierExamples.embed, texts, embedder.embed_documents)
        return self._tier_cache[key]

    def _count_tokens_above(self, max_tokens: int | None, state: RoutingState) -> int | None:
        """Prompt size (an upper bound in tokens) above which a context window could be too small."""
        windows = [group.max_input_tokens for group in state.catalogue.groups.values() if group.max_input_tokens]
        if not windows:
            return None
        routes = (state.profile.default_route, *state.profile.routes.values())
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
        self,
        messages: Any,
        model: str,
        request: Mapping[str, Any],
        *,
        state: RoutingState | None = None,
        kind: RequestKind = "chat",
    ) -> tuple[Decision, Reservation | None, list[BudgetScope]]:
        """Decide and reserve the request's estimated cloud cost; a denied reservation downgrades to local.

        Shared by :meth:`acompletion` and the proxy hook. The caller settles or releases the
        reservation after the call (:attr:`budget`). ``state`` is the snapshot the caller took at
        the request's start (it builds LiteLLM's arguments from the same one); default: the current.
        """
        state = state or self._state
        decision, signals, budget, scopes, timings = await self._decide(
            messages, model, task_hint(request), request, state, kind
        )
        held = await self.budget.reserve(decision, budget, scopes)
        if isinstance(held, Denial):  # another request took the last of the budget since the view was read
            budget = budget.model_copy(update={"cloud_blocked": held.message()})
            decision = self._annotate(decide(signals, state.profile, state.catalogue, budget), state)
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
        from biorouter.governance.guard import ensure_guard_registered

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
        self._serve_metrics_once()
        state = self._state  # one snapshot for the whole request, whatever a reload does meanwhile
        decision, held, scopes = await self._prepare_or_record(messages, model, request, request_id, state)
        logger.info(decision.log_line())
        arguments = {**request, **litellm_arguments(decision, request, state.profile)}
        if decision.strategy is not None and decision.strategy.fans_out:  # race, ensemble, cascade
            return await serve_in_process(self, decision, held, scopes, arguments, request_id)
        return await self._call(self.router.acompletion, decision, held, scopes, arguments, request_id)

    async def failed(self, decision: Decision, held: Reservation | None, request_id: str, error: BaseException) -> None:
        """Account for a call that failed: release its reservation and count it.

        A local-only request is refused (and audited) with :class:`KeptLocalError`, raised from
        ``error``; for any other request this returns and the caller re-raises ``error`` unchanged.
        """
        await self.budget.release(held)
        self.session.record(task=decision.task, group=decision.group, ok=False, refused=decision.local_only)
        if not decision.local_only:
            return
        refusal = decision.kept_local(error)
        logger.warning("biorouter refused a local-only request %s: %s", request_id, refusal)
        self.record(decision, request_id, outcome="refused", error=str(refusal))
        raise refusal from error

    def _serve_metrics_once(self) -> None:
        """Start the metrics endpoint with the first call: a process serving requests, not a CLI that only decides."""
        if not self._metrics_started:
            self._metrics_started = True
            metrics.serve(self._metrics_port, self.settings.metrics.host)

    async def _call(
        self,
        call: Any,
        decision: Decision,
        held: Reservation | None,
        scopes: list[BudgetScope],
        arguments: Mapping[str, Any],
        request_id: str,
    ) -> Any:
        """Make the routed LiteLLM call, then account for it: session, metrics, budget, audit.

        A local-only request that LiteLLM could not serve locally becomes a :class:`KeptLocalError`
        (refused, audited); other failures are LiteLLM's own exceptions, unchanged.
        """
        started = time.perf_counter()
        try:
            response = await call(**arguments)
        except Exception as e:
            await self.failed(decision, held, request_id, e)
            raise
        hidden = getattr(response, "_hidden_params", None)
        if not isinstance(hidden, dict):
            await self.budget.release(held)
            return response
        hidden["biorouter"] = decision
        served = served_by(hidden, self.router)
        group = served["group"] or decision.group
        metrics.record_served(decision.profile, decision.group, group)
        # A stream's cost is known only at its end: count its estimate (an upper bound) instead.
        cost = (held.estimate_usd if held else 0.0) if arguments.get("stream") else response_cost(hidden)
        self.session.record(task=decision.task, group=group, ok=True, cost_usd=cost)
        await self.budget.settle(
            held,
            scopes,
            decision=decision,
            group=group,
            cost_usd=cost,
            seconds=time.perf_counter() - started,
            user=arguments.get("user"),
        )
        self.record(decision, request_id, outcome="served", **served)
        return response

    async def aembedding(self, input: str | list[str], model: str = "auto", **kwargs: Any) -> Any:
        """Embed ``input`` through the profile's ``embedding_route`` (``model="auto"``) or a named embedding group.

        Governance is the chat path's: text carrying sensitive content is only offered to local
        embedding groups, and refused (:class:`KeptLocalError`) when none can serve it. The
        Decision is in ``response._hidden_params["biorouter"]``.
        """
        texts = [input] if isinstance(input, str) else input
        if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
            raise RequestError("input must be a string or a non-empty list of strings")
        messages = [{"role": "user", "content": text} for text in texts]
        request: dict[str, Any] = {"input": input, **kwargs}
        request_id = str(request.setdefault("litellm_call_id", str(uuid.uuid4())))
        self._serve_metrics_once()
        state = self._state
        decision, held, scopes = await self._prepare_or_record(
            messages, model, request, request_id, state, kind="embedding"
        )
        logger.info(decision.log_line())
        arguments = {**request, **litellm_arguments(decision, request, state.profile)}
        arguments.pop("context_window_fallbacks", None)  # a chat notion: embeddings fall back through fallbacks
        return await self._call(self.router.aembedding, decision, held, scopes, arguments, request_id)

    async def _prepare_or_record(
        self,
        messages: Any,
        model: str,
        request: Mapping[str, Any],
        request_id: str,
        state: RoutingState,
        kind: RequestKind = "chat",
    ) -> tuple[Decision, Reservation | None, list[BudgetScope]]:
        try:
            return await self.prepare(messages, model, request, state=state, kind=kind)
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


def _may_take_a_tiered_route(signals: Signals, profile: Profile) -> bool:
    """Whether ``decide()`` could pick a route with tiers: the default route, the hinted task's, the
    classifier's, or the runner-up's when unsure requests take the safer of the top two."""
    if profile.default_route.tiers:
        return True
    if signals.task_hint is not None:
        candidates = [signals.task_hint]
    else:
        candidates = [signals.task] if signals.task is not None else []
        if profile.classifier.when_unsure == "safer_of_top_two":
            candidates += sorted(signals.scores, key=lambda task: -signals.scores[task])[:2]
    routes = (profile.route_for(task) for task in candidates)
    return any(route is not None and route.tiers for route in routes)


def detect_blocking(
    settings: Settings, deployments: list[Mapping[str, Any]], profiles: Mapping[str, Profile]
) -> Resources:
    """Detect the machine, also when called from code already running an event loop (in a worker thread)."""
    from biorouter.hardware.resources import detect

    def run() -> Resources:
        return detect(settings, model_list=deployments, profiles=profiles)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


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
    """Close and forget the default instance (after editing files, or between tests).

    Closing now logs its session summary while logging is still set up; leaving it to ``atexit``
    would log into streams that may be gone by then (pytest's captured output, for one).
    """
    global _default
    with _default_lock:
        if _default is not None:
            atexit.unregister(_default.close)
            _default.close()
        _default = None
