"""The LiteLLM proxy hook: classify, decide, and rewrite the request before LiteLLM routes it.

For every chat request the proxy calls :meth:`BiorouterProxyHook.async_pre_call_hook`, which
reads the messages, lets the same ``BioRouter.aroute()`` the Python API uses take the decision,
and sets ``model``, ``fallbacks`` and ``metadata["biorouter"]`` on the request; LiteLLM then does
the transport (retries, cooldowns, fallbacks). After the call, the decision becomes
``x-biorouter-*`` response headers (streaming included).

The hook is also the guard (:class:`biorouter.governance.guard.LocalOnlyGuard`): on every hop LiteLLM takes
it drops cloud deployments of local-only requests, and it scans any request that reached the
router without a Decision. Requests of other kinds that carry text (embeddings, responses,
Anthropic messages) get the same governance check: sensitive content never goes to a cloud group.
When a local-only request fails everywhere it is allowed to go, the client gets HTTP 503 naming
the rule that kept it local, and the audit log gets a record (as it does for every local-only
request served).

The hook is built when the proxy imports this module, but it loads nothing then: the profile,
utterances and deployment list are read on the first request, from the proxy's own router.
``BIOROUTER_WARMUP=1`` starts loading the classifier in a background thread at start-up instead,
so the first request does not wait for the encoder (``biorouter serve`` sets it).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from biorouter import metrics
from biorouter.classify.classifier import TaskClassifier
from biorouter.costs.ledger import BudgetScope, Reservation
from biorouter.errors import BiorouterError, ConfigError, KeptLocalError, Problem, RequestError, RoutingError
from biorouter.governance.guard import LocalOnlyGuard, decision_summary, deployment_locality
from biorouter.governance.request_view import request_messages
from biorouter.governance.sensitivity import SensitivityDetector
from biorouter.proxy.fan_out import is_inner_call, outcome_headers, strategy_arguments
from biorouter.routing.catalogue import BIOROUTER_PROVIDER
from biorouter.routing.decision import Decision
from biorouter.serving import decision_log
from biorouter.serving.adapter import METADATA_KEY, litellm_arguments, task_hint
from biorouter.serving.engine import BioRouter
from biorouter.serving.heap import freeze_startup_heap
from biorouter.serving.reload import RoutingState, install_sighup
from biorouter.serving.session import SessionSummary, response_cost
from biorouter.settings import load_settings
from biorouter.workers.sync import WorkerSync
from biorouter.workers.topology import require_shared_ledger, shared_dir, worker_count

__all__ = ["BiorouterProxyHook", "proxy_handler_instance"]

logger = logging.getLogger("biorouter.proxy")

_CHAT_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
_EMBEDDING_CALLS = frozenset({"embeddings", "aembedding", "embedding"})
_TEXT_FIELDS = ("messages", "input", "prompt")
_NER_WARMUP_WAIT_S = 60.0  # the heap is frozen once the NER model is in it too (2-3 s; longer on a busy machine)


def _configure_logging() -> None:
    """Decision lines go to the proxy's stderr unless the operator configured logging already."""
    root = logging.getLogger("biorouter")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s - biorouter:%(levelname)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("BIOROUTER_LOG_LEVEL", "INFO").upper())
        root.propagate = False
    decision_log.ensure_handler()  # BIOROUTER_DEBUG_ROUTING=1: one bare JSON line per decision


def _single_threaded_blas() -> None:
    """One OpenBLAS/MKL thread in the proxy process.

    biorouter's numpy work is small products (a query against the utterance index, the heads) and,
    once at start-up, training the softmax head. With a thread per core, OpenBLAS spins its
    threads around each call: on a busy 2-core machine the head took 1.7 s to train instead of
    0.18 s, competing with LiteLLM's start-up and, per request, with the event loop. The encoder
    (ONNX Runtime) has its own thread setting (``classifier.threads``) and is not affected.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency; a missing one costs speed, not correctness
        return
    threadpool_limits(limits=1, user_api="blas")


def _serve_metrics() -> None:
    """Start biorouter's metrics endpoint when biorouter.yaml or BIOROUTER_METRICS_PORT asks for one."""
    try:
        settings = load_settings().metrics
        metrics.serve(settings.resolved_port(), settings.host)
    except BiorouterError as e:  # the first request reports configuration errors in full
        level = logging.ERROR if os.environ.get("BIOROUTER_METRICS_PORT") else logging.DEBUG
        logger.log(level, "biorouter metrics endpoint not started: %s", e)


def _proxy_model_list() -> list[Mapping[str, Any]]:
    """The deployments the running proxy serves (resolved from its config)."""
    from litellm.proxy import proxy_server

    router = getattr(proxy_server, "llm_router", None)
    if router is None:
        raise ConfigError([Problem("litellm proxy", (), "no model_list loaded: start the proxy with --config")])
    return list(router.model_list)


BUDGET_KEY = "biorouter_budget"  # metadata key: the request's reservation and budget scopes, for settling


def _budget_state(request: Mapping[str, Any]) -> tuple[Reservation | None, list[BudgetScope]]:
    """The reservation and scopes the pre-call hook stored with a request (LiteLLM moves metadata around)."""
    for source in (request.get("metadata"), (request.get("litellm_params") or {}).get("metadata")):
        if isinstance(source, Mapping) and isinstance(source.get(BUDGET_KEY), Mapping):
            state = source[BUDGET_KEY]
            held = Reservation.model_validate(state["reservation"]) if state.get("reservation") else None
            return held, [BudgetScope.model_validate(scope) for scope in state.get("scopes") or ()]
    return None, []


def _request_id(data: Mapping[str, Any]) -> str:
    return str(data.get("litellm_call_id") or "-")


def _internal_error(error: Exception, data: Mapping[str, Any]) -> HTTPException:
    """An unexpected exception in biorouter's own code: a 500 that says so, with a request id to grep.

    Bad input is a RequestError (400) by design, found by the bad-request tests and the fuzzers;
    anything else escaping the decision path is a bug of ours, so it stays a 500 -- calling it a
    400 would blame the client -- but a labelled one, with the traceback in the proxy log instead
    of LiteLLM's bare exception text. The request is not routed (governance fails closed).
    """
    request_id = _request_id(data)
    logger.exception("biorouter internal error on request %s", request_id)
    detail = (
        f"biorouter internal error ({type(error).__name__}) on request {request_id}: "
        "a bug in biorouter, not in the request; the proxy log has the traceback"
    )
    return HTTPException(status_code=500, detail=detail)


def _on_proxy_shutdown(server: Any, action: Any) -> None:
    """Run ``action`` when the proxy shuts down.

    LiteLLM 1.106 offers callbacks no shutdown hook, and ``atexit`` never runs under uvicorn, which
    re-raises SIGTERM after its graceful shutdown. The proxy's lifespan calls the module-level
    ``proxy_shutdown_event`` by name when it stops, so that function is wrapped; if a LiteLLM
    release renames it, the summary falls back to ``atexit`` (e.g. Ctrl-C in a terminal).
    """
    original = getattr(server, "proxy_shutdown_event", None)
    if original is None or not asyncio.iscoroutinefunction(original):
        atexit.register(action)
        return

    async def proxy_shutdown_event(*args: Any, **kwargs: Any) -> None:
        action()
        await original(*args, **kwargs)

    server.proxy_shutdown_event = proxy_shutdown_event


def _worker_sync() -> WorkerSync | None:
    """With several proxy workers, this worker's link to the others; refuses a per-process ledger.

    Raising here stops the proxy's start-up (uvicorn's supervisor exits when a worker fails to
    start), which is what a user running ``litellm --num_workers 4`` without Redis must see.
    """
    workers = worker_count()
    if workers <= 1:
        return None
    try:
        settings = load_settings()
    except BiorouterError:
        settings = None  # the first request reports configuration errors in full
    if settings is not None:
        require_shared_ledger(settings, workers, source="NUM_WORKERS / --num_workers")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        logger.warning(
            "biorouter: %d workers without PROMETHEUS_MULTIPROC_DIR: each worker's /biorouter/metrics shows only "
            "its own counts (biorouter serve sets it)",
            workers,
        )
    return WorkerSync(shared_dir(), workers=workers)


class BiorouterProxyHook(LocalOnlyGuard):
    """Routes ``"model": "auto"`` requests inside the LiteLLM proxy, and guards every hop."""

    def __init__(self, *, warmup: bool | None = None) -> None:
        super().__init__(scan_undecided=True)
        self._engine: BioRouter | None = None
        self._classifier: TaskClassifier | None = None
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one engine build at a time (it reads files and probes the machine)
        _configure_logging()
        self._sync: WorkerSync | None = None
        server = sys.modules.get("litellm.proxy.proxy_server")
        if server is not None and getattr(server, "app", None) is not None:  # inside a running proxy
            from biorouter.proxy.admin import register_routes
            from biorouter.proxy.compat import patch_auth_errors_without_prisma

            patch_auth_errors_without_prisma()  # a wrong key is a 401, not a 500 (see compat.py)
            from biorouter.proxy.body_shape import patch_unreadable_bodies

            patch_unreadable_bodies()  # a JSON array as the body is a 400, not a 500 (see body_shape.py)
            self._sync = _worker_sync()
            register_routes(
                server.app, self.engine, reload=self.reload, switch=self.switch_profile, session=self.session_summary
            )
            _on_proxy_shutdown(server, self._log_session_summary)
            if self._sync is not None:
                self._sync.start(self.engine)
                sync = self._sync
                logger.info("biorouter: worker %d of %d, sharing %s", os.getpid(), sync.workers, sync.folder)
            _serve_metrics()
            if install_sighup(self._reload_on_signal):
                logger.info("biorouter: SIGHUP reloads profiles/ and utterances/ (pid %d)", os.getpid())
            _single_threaded_blas()
        if warmup if warmup is not None else os.environ.get("BIOROUTER_WARMUP") == "1":
            threading.Thread(target=self._warm, name="biorouter-warmup", daemon=True).start()

    def _shared_classifier(self) -> TaskClassifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = TaskClassifier.from_settings(load_settings())
            return self._classifier

    def _warm(self) -> None:
        # The NER model (spaCy, 2-3 s) loads beside the classifier, which every routed request needs
        # first; one after the other, the first routed request waited about 3 s longer (bench/startup.py).
        # (Building the engine in a third thread as well measured no faster: it needs the classifier.)
        detector = threading.Thread(target=self._warm_detector, name="biorouter-warmup-ner", daemon=True)
        detector.start()
        try:
            self._shared_classifier().warm()
            logger.info("biorouter classifier loaded")
        except BiorouterError as e:
            logger.error("biorouter warm-up failed (requests will report it): %s", e)
            return
        if "litellm.proxy.proxy_server" in sys.modules:
            self._warm_engine()
            detector.join(timeout=_NER_WARMUP_WAIT_S)
            freeze_startup_heap()  # what warm-up loaded lives as long as the proxy: out of the collector's way

    def _warm_detector(self) -> None:
        if self._default_detector.warm():
            logger.info("biorouter sensitivity detector loaded (NER model in memory)")

    def _warm_engine(self, timeout_s: float = 120.0) -> None:
        """Build the engine as soon as the proxy has loaded its deployments, not on the first request.

        Building it reads the profiles and detects the machine (tools, deployment health: up to
        two seconds measured on the first request); here it overlaps LiteLLM's own start-up.
        """
        deadline = time.monotonic() + timeout_s
        while self._engine is None and time.monotonic() < deadline:
            try:
                _proxy_model_list()
            except ConfigError:  # LiteLLM has not loaded its config yet
                time.sleep(0.1)
                continue
            try:
                self._engine_once()
            except BiorouterError as e:
                logger.error("biorouter warm-up could not build the engine (requests will report it): %s", e)
            return

    @property
    def detector(self) -> SensitivityDetector:
        """Undecided requests are scanned with the active profile's own patterns (the guard reads this)."""
        engine = self._engine
        return engine.detector if engine is not None else self._default_detector

    @detector.setter
    def detector(self, value: SensitivityDetector) -> None:  # the guard's constructor sets the built-in rules
        self._default_detector = value

    async def reload(self, *, reason: str, by: str) -> RoutingState:
        """Reload profiles/ and utterances/ into the engine (built first if no request came yet)."""
        engine = await self.engine()
        state = await engine.reload(reason=reason, by=by)
        if self._sync is not None:
            self._sync.publish("reload", engine, reason=reason, by=by)
        return state

    async def switch_profile(self, name: str, *, reason: str, by: str) -> BioRouter:
        """Switch the active profile (every worker's, with several)."""
        engine = await self.engine()
        at = datetime.now(UTC)  # one time for the switch in every worker's record, so the sum lists it once
        engine.switch_profile(name, reason=reason, by=by, at=at)
        if self._sync is not None:
            self._sync.publish("switch", engine, reason=reason, by=by, at=at)
        return engine

    async def session_summary(self) -> tuple[SessionSummary, list[dict[str, Any]] | None]:
        """The session counters (summed over every worker, with several) and the workers, if several."""
        engine = await self.engine()
        if self._sync is None:
            return engine.session.summary(), None
        return self._sync.summary(engine), self._sync.describe()

    async def _reload_on_signal(self) -> None:
        try:
            await self.reload(reason="SIGHUP", by="signal")
        except BiorouterError:
            pass  # logged with every problem by the engine; the last good configuration serves on
        except Exception:
            logger.exception("biorouter reload on SIGHUP failed; the last good configuration serves on")

    def _log_session_summary(self) -> None:
        if self._engine is not None:
            self._engine.session.log_summary()
            if self._sync is not None:  # the launcher logs the sum over the workers from these files
                self._sync.write(self._engine, force=True)

    def _build_engine(self) -> BioRouter:
        classifier = self._shared_classifier()
        engine = BioRouter.from_settings(model_list=_proxy_model_list(), classifier=classifier)
        if self._sync is not None:
            self._sync.adopt(engine)  # a worker started after a switch serves the switched profile
        logger.info(
            "biorouter active profile '%s' over groups: %s", engine.profile.name, ", ".join(engine.catalogue.names())
        )
        return engine

    def _engine_once(self) -> BioRouter:
        """The engine, built by whoever comes first (the warm-up or a request); the others wait for it."""
        with self._build_lock:
            if self._engine is None:
                self._engine = self._build_engine()
            return self._engine

    async def engine(self) -> BioRouter:
        if self._engine is None:
            return await asyncio.to_thread(self._engine_once)
        return self._engine

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        params = data.get("litellm_params")  # the guard reads a decision there too (logging callbacks' shape)
        nested = params.get("metadata") if isinstance(params, dict) else None
        for metadata in (data.get("metadata"), data.get("litellm_metadata"), nested):
            if isinstance(metadata, dict):  # a client never supplies biorouter's own records
                metadata.pop(METADATA_KEY, None)
                metadata.pop(BUDGET_KEY, None)
        messages = request_messages(data)
        if call_type not in _CHAT_CALLS and (messages is None or not data.get("model")):
            return data  # nothing to judge (files, batches, model lists...)
        if messages is None and "messages" not in data:  # LiteLLM reads a body it cannot decode as {}
            detail = "the request has no 'messages' (a list of message objects) or 'prompt'; is the body UTF-8 JSON?"
            raise HTTPException(status_code=400, detail=f"biorouter: {detail}")
        held: Reservation | None = None
        scopes: list[BudgetScope] = []
        try:
            engine = await self.engine()
            state = engine.state  # one configuration snapshot for this request, whatever a reload does
            model = str(data.get("model") or "auto")
            if call_type in _CHAT_CALLS:
                decision, held, scopes = await engine.prepare(messages, model, data, state=state)
            elif call_type in _EMBEDDING_CALLS:
                decision = await engine.aroute(messages, model, request=data, kind="embedding", state=state)
            else:
                decision = await engine.aroute(messages, model, task=task_hint(data), state=state)
        except RequestError as e:
            self._count_failed_before_call()
            raise HTTPException(status_code=400, detail=f"biorouter: {e}") from e
        except KeptLocalError as e:
            engine.record_refusal(e, _request_id(data))
            raise HTTPException(status_code=503, detail=f"biorouter: {e}") from e
        except RoutingError as e:  # no allowed group left, e.g. a budget refused a cloud group named directly
            self._count_failed_before_call()
            logger.warning("biorouter refused a request: %s", e)
            raise HTTPException(status_code=503, detail=f"biorouter: {e}") from e
        except ConfigError as e:
            logger.error("biorouter configuration error: %s", e)
            raise HTTPException(status_code=500, detail=f"biorouter configuration error: {e}") from e
        except BiorouterError as e:  # the classifier or the profile selection failed: ours, not the client's
            logger.error("biorouter could not route a request: %s", e)
            raise HTTPException(status_code=500, detail=f"biorouter: {e}") from e
        except HTTPException:
            raise
        except Exception as e:
            raise _internal_error(e, data) from e
        logger.info(decision.log_line())
        if call_type in _EMBEDDING_CALLS and decision.mode != "passthrough":  # "auto": the embedding route
            data.update(litellm_arguments(decision, data, state.profile))
            data.pop("context_window_fallbacks", None)
        elif call_type in _CHAT_CALLS:
            data.update(litellm_arguments(decision, data, state.profile))
            data["metadata"][BUDGET_KEY] = {
                "reservation": held.model_dump(mode="json") if held is not None else None,
                "scopes": [scope.model_dump(mode="json") for scope in scopes],
            }
            if decision.strategy is not None and decision.strategy.fans_out:  # race/ensemble/cascade
                data.update(strategy_arguments(decision))  # served by biorouter.proxy.strategy
        else:  # governance only: the client named its group; keep LiteLLM's shape for this call type
            key = "litellm_metadata" if isinstance(data.get("litellm_metadata"), dict) else "metadata"
            data[key] = {**(data.get(key) or {}), METADATA_KEY: decision.summary()}
        return data

    def _count_failed_before_call(self) -> None:
        """A request refused before any call (400, a budget's 503) is a request and an error of the session."""
        if self._engine is not None:
            self._engine.session.record(task=None, group=None, ok=False)

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> HTTPException | None:
        """A local-only request that failed everywhere it may go: 503 naming the rule, and an audit record."""
        summary = decision_summary(request_data)
        if summary is not None and self._engine is not None:
            self._engine.session.record(
                task=summary.get("task"), group=summary.get("group"), ok=False, refused=bool(summary.get("local_only"))
            )
            held, _ = _budget_state(request_data)
            await self._engine.budget.release(held)
        if summary is None or not summary.get("local_only") or self._engine is None:
            blocked: HTTPException | None = await super().async_post_call_failure_hook(
                request_data, original_exception, user_api_key_dict, traceback_str
            )
            if blocked is not None:  # the guard kept a request nobody decided on from every cloud deployment
                profile = self._engine.profile.name if self._engine is not None else "-"
                metrics.record_refusal(profile, getattr(original_exception, "rules", ()), stage="guard")
            return blocked
        decision = Decision.model_validate(summary)
        message = f"biorouter: {decision.kept_local(original_exception)}"
        logger.warning("biorouter refused a local-only request %s: %s", _request_id(request_data), message)
        self._engine.record(decision, _request_id(request_data), outcome="refused", error=message)
        return HTTPException(status_code=503, detail=message)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Count the request in the session; audit where a local-only one was served."""
        summary = decision_summary(kwargs)
        if summary is None or self._engine is None:
            return
        if is_inner_call(kwargs) or (summary.get("strategy") or {}).get("kind", "single") != "single":
            return  # a strategy counts its own calls, once each (biorouter.serving.orchestrate.serve_plan)
        params = kwargs.get("litellm_params") or {}
        info = params.get("model_info") or kwargs.get("model_info") or {}
        metadata = params.get("metadata") or {}
        group = metadata.get("model_group") or summary.get("group")
        cost = response_cost(kwargs)
        self._engine.session.record(task=summary.get("task"), group=group, ok=True, cost_usd=cost)
        decision = Decision.model_validate(summary)
        metrics.record_served(decision.profile, decision.group, group)
        held, scopes = _budget_state(kwargs)
        elapsed = end_time - start_time
        seconds = elapsed.total_seconds() if hasattr(elapsed, "total_seconds") else None
        user = metadata.get("user_api_key_alias") or metadata.get("user_api_key_user_id") or kwargs.get("user")
        await self._engine.budget.settle(
            held, scopes, decision=decision, group=group, cost_usd=cost, seconds=seconds, user=user
        )
        if not summary.get("local_only"):
            return
        self._engine.record(
            decision,
            str(kwargs.get("litellm_call_id") or "-"),
            outcome="served",
            group=group,
            deployment_id=info.get("id"),
            api_base=params.get("api_base"),
            locality=deployment_locality({"model_info": info}),
        )

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        metadata = data.get("metadata")
        summary = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
        if not isinstance(summary, Mapping):
            return None
        headers = {**Decision.model_validate(summary).headers(), **outcome_headers(response)}
        served = _served_group(response)
        if served is not None:
            headers["x-biorouter-served-group"] = served
        return headers


def _served_group(response: Any) -> str | None:
    """The group whose deployment answered (another than the decided one when LiteLLM fell back).

    LiteLLM names the answering deployment's id in the response; the proxy's router maps it to its
    group. None when it cannot tell, and for biorouter's own strategy pseudo group (its winner has
    its own headers).
    """
    hidden = getattr(response, "_hidden_params", None) or {}
    model_id = hidden.get("model_id") if isinstance(hidden, Mapping) else None
    if not model_id:
        return None
    try:
        from litellm.proxy import proxy_server

        router = getattr(proxy_server, "llm_router", None)
        deployment = router.get_deployment(model_id=str(model_id)) if router is not None else None
    except Exception:  # a header is never worth failing a served request
        return None
    if deployment is None or str(deployment.litellm_params.model).startswith(BIOROUTER_PROVIDER):
        return None
    return str(deployment.model_name)


proxy_handler_instance = BiorouterProxyHook()
