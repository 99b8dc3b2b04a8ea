"""The second wall: a LiteLLM callback that drops cloud deployments for local-only requests.

``decide()`` already offers a local-only request nothing but local groups. The guard makes the
promise independent of that: LiteLLM calls ``async_filter_deployments`` every time it picks a
deployment — the first try, every retry, every fallback hop, context-window and default
fallbacks — and the guard removes every deployment whose ``model_info.locality`` is not
``local``. If nothing is left, it raises :class:`CloudDeploymentBlocked` for that hop: LiteLLM
moves on to the next allowed group, or the client gets the refusal. Nothing widens to the cloud.

A request is local-only for the guard when biorouter's Decision (``metadata["biorouter"]``) says
so. In the proxy, where every request passes the hook first, a request with no Decision is
scanned by the sensitivity detector instead (``scan_undecided``), so a call type the hook does
not route still cannot carry identifiers to the cloud.

The biorouter proxy hook *is* a guard. :data:`proxy_guard` is the guard alone, for a LiteLLM proxy
that does its own routing but wants the backstop (``callbacks: biorouter.governance.guard.proxy_guard``): it
scans every request with the built-in rules and keeps those with identifiers on local deployments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from biorouter.errors import KeptLocalError, RequestError
from biorouter.governance.request_view import request_messages, view_request
from biorouter.governance.sensitivity import SensitivityDetector

__all__ = [
    "CloudDeploymentBlocked",
    "LocalOnlyGuard",
    "decision_summary",
    "ensure_guard_registered",
    "proxy_guard",
]

logger = logging.getLogger("biorouter.guard")

_METADATA_KEYS = ("metadata", "litellm_metadata")


class CloudDeploymentBlocked(KeptLocalError):
    """Every deployment LiteLLM could pick for this hop is cloud, and the request is local-only."""


def decision_summary(request: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """biorouter's Decision record in a request's metadata, wherever LiteLLM keeps it."""
    for key in _METADATA_KEYS:
        metadata = (request or {}).get(key)
        if isinstance(metadata, Mapping) and isinstance(metadata.get("biorouter"), Mapping):
            summary: Mapping[str, Any] = metadata["biorouter"]
            return summary
    params = (request or {}).get("litellm_params")  # where LiteLLM's logging callbacks keep it
    return decision_summary(params) if isinstance(params, Mapping) else None


def deployment_locality(deployment: Mapping[str, Any]) -> str:
    info = deployment.get("model_info")
    locality = info.get("locality") if isinstance(info, Mapping) else None
    return "local" if locality == "local" else "cloud"


def _request_texts(messages: Any, request: Mapping[str, Any]) -> tuple[str, ...]:
    """Every text the request carries, read the way the proxy hook reads it (:func:`request_messages`)."""
    found = messages or request_messages(request)
    if not found:
        return ()
    try:
        return view_request(found).texts
    except RequestError:
        return (str(found),)  # unusual shape: scan its text form rather than nothing


class LocalOnlyGuard(CustomLogger):
    """Filters deployments per hop; register one in ``litellm.callbacks``."""

    def __init__(self, *, scan_undecided: bool = False, detector: SensitivityDetector | None = None) -> None:
        super().__init__()
        self.scan_undecided = scan_undecided
        self.detector = detector or SensitivityDetector.build()

    def local_only_rules(self, messages: Any, request: Mapping[str, Any] | None) -> tuple[str, ...]:
        """Why this request must stay local (empty when it need not)."""
        summary = decision_summary(request)
        if summary is not None:
            if not summary.get("local_only"):
                return ()
            return tuple(summary.get("local_only_rules") or ()) or ("decision",)
        if not self.scan_undecided:
            return ()
        return tuple(f"content:{rule}" for rule in self.detector.scan(_request_texts(messages, request or {})))

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list[Any],
        messages: Any,
        request_kwargs: dict[str, Any] | None = None,
        parent_otel_span: Any = None,
    ) -> list[Any]:
        if not healthy_deployments:  # all cooling down or unhealthy: LiteLLM reports that itself
            return healthy_deployments
        rules = self.local_only_rules(messages, request_kwargs)
        if not rules:
            return healthy_deployments
        local = [d for d in healthy_deployments if deployment_locality(d) == "local"]
        dropped = len(healthy_deployments) - len(local)
        if dropped:
            logger.warning(
                "biorouter guard: dropped %d cloud deployment(s) of '%s' for a local-only request (%s)",
                dropped,
                model,
                ", ".join(rules),
            )
        if not local:
            raise CloudDeploymentBlocked(
                f"biorouter guard: request kept local ({', '.join(rules)}); group '{model}' has only cloud deployments",
                rules=rules,
            )
        return local

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> Any:
        """In a proxy: a request the guard kept from every cloud deployment is a 503 that says so."""
        if "biorouter guard: request kept local" not in str(original_exception):
            return None
        from fastapi import HTTPException

        first_line = str(original_exception).splitlines()[0]
        return HTTPException(status_code=503, detail=first_line[first_line.find("biorouter guard") :])


def ensure_guard_registered() -> LocalOnlyGuard:
    """The guard in ``litellm.callbacks`` (added once per process), for in-process routers."""
    import litellm

    for callback in litellm.callbacks:
        if isinstance(callback, LocalOnlyGuard):
            return callback
    guard = LocalOnlyGuard()
    litellm.callbacks.append(guard)
    return guard


proxy_guard = LocalOnlyGuard(scan_undecided=True)
"""The guard without biorouter's routing, for ``litellm_settings: callbacks:`` in a proxy config."""
