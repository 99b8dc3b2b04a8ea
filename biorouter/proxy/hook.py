"""The LiteLLM proxy hook: classify, decide, and rewrite the request before LiteLLM routes it.

For every chat request the proxy calls :meth:`BiorouterProxyHook.async_pre_call_hook`, which
reads the messages, lets the same ``BioRouter.aroute()`` the Python API uses take the decision,
and sets ``model``, ``fallbacks`` and ``metadata["biorouter"]`` on the request; LiteLLM then does
the transport (retries, cooldowns, fallbacks). After the call, the decision becomes
``x-biorouter-*`` response headers (streaming included).

The hook is also the guard (:class:`biorouter.guard.LocalOnlyGuard`): on every hop LiteLLM takes
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
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException

from biorouter import decision_log, metrics
from biorouter.adapter import METADATA_KEY, litellm_arguments, task_hint
from biorouter.classifier import TaskClassifier
from biorouter.decision import Decision
from biorouter.engine import BioRouter
from biorouter.errors import BiorouterError, ConfigError, KeptLocalError, Problem, RequestError, RoutingError
from biorouter.guard import LocalOnlyGuard, decision_summary, deployment_locality
from biorouter.ledger import BudgetScope, Reservation
from biorouter.request_view import request_messages
from biorouter.session import response_cost
from biorouter.settings import load_settings

__all__ = ["BiorouterProxyHook", "proxy_handler_instance"]

logger = logging.getLogger("biorouter.proxy")

_CHAT_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
_TEXT_FIELDS = ("messages", "input", "prompt")


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


class BiorouterProxyHook(LocalOnlyGuard):
    """Routes ``"model": "auto"`` requests inside the LiteLLM proxy, and guards every hop."""

    def __init__(self, *, warmup: bool | None = None) -> None:
        super().__init__(scan_undecided=True)
        self._engine: BioRouter | None = None
        self._classifier: TaskClassifier | None = None
        self._lock = threading.Lock()
        _configure_logging()
        server = sys.modules.get("litellm.proxy.proxy_server")
        if server is not None and getattr(server, "app", None) is not None:  # inside a running proxy
            from biorouter.proxy.admin import register_routes

            register_routes(server.app, self.engine)
            _on_proxy_shutdown(server, self._log_session_summary)
            _serve_metrics()
        if warmup if warmup is not None else os.environ.get("BIOROUTER_WARMUP") == "1":
            threading.Thread(target=self._warm, name="biorouter-warmup", daemon=True).start()

    def _shared_classifier(self) -> TaskClassifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = TaskClassifier.from_settings(load_settings())
            return self._classifier

    def _warm(self) -> None:
        try:
            self._shared_classifier().load()
            logger.info("biorouter classifier loaded")
        except BiorouterError as e:
            logger.error("biorouter warm-up failed (requests will report it): %s", e)

    def _log_session_summary(self) -> None:
        if self._engine is not None:
            self._engine.session.log_summary()

    def _build_engine(self) -> BioRouter:
        classifier = self._shared_classifier()
        engine = BioRouter.from_settings(model_list=_proxy_model_list(), classifier=classifier)
        self.detector = engine.detector  # undecided requests are scanned with the profile's own patterns
        logger.info(
            "biorouter active profile '%s' over groups: %s", engine.profile.name, ", ".join(engine.catalogue.names())
        )
        return engine

    async def engine(self) -> BioRouter:
        if self._engine is None:
            engine = await asyncio.to_thread(self._build_engine)
            with self._lock:
                if self._engine is None:
                    self._engine = engine
        assert self._engine is not None
        return self._engine

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        for key in ("metadata", "litellm_metadata"):  # a client never supplies biorouter's own records
            if isinstance(data.get(key), dict):
                data[key].pop(METADATA_KEY, None)
                data[key].pop(BUDGET_KEY, None)
        messages = request_messages(data)
        if call_type not in _CHAT_CALLS and (messages is None or not data.get("model")):
            return data  # nothing to judge (files, batches, model lists...)
        held: Reservation | None = None
        scopes: list[BudgetScope] = []
        try:
            engine = await self.engine()
            model = str(data.get("model") or "auto")
            if call_type in _CHAT_CALLS:
                decision, held, scopes = await engine.prepare(messages, model, data)
            else:
                decision = await engine.aroute(messages, model, task=task_hint(data))
        except RequestError as e:
            raise HTTPException(status_code=400, detail=f"biorouter: {e}") from e
        except KeptLocalError as e:
            engine.record_refusal(e, _request_id(data))
            raise HTTPException(status_code=503, detail=f"biorouter: {e}") from e
        except RoutingError as e:
            logger.warning("biorouter refused a request: %s", e)
            raise HTTPException(status_code=503, detail=f"biorouter: {e}") from e
        except ConfigError as e:
            logger.error("biorouter configuration error: %s", e)
            raise HTTPException(status_code=500, detail=f"biorouter configuration error: {e}") from e
        logger.info(decision.log_line())
        if call_type in _CHAT_CALLS:
            data.update(litellm_arguments(decision, data, engine.profile))
            data["metadata"][BUDGET_KEY] = {
                "reservation": held.model_dump(mode="json") if held is not None else None,
                "scopes": [scope.model_dump(mode="json") for scope in scopes],
            }
        else:  # governance only: the client named its group; keep LiteLLM's shape for this call type
            key = "litellm_metadata" if isinstance(data.get("litellm_metadata"), dict) else "metadata"
            data[key] = {**(data.get(key) or {}), METADATA_KEY: decision.summary()}
        return data

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
        return Decision.model_validate(summary).headers()


proxy_handler_instance = BiorouterProxyHook()
