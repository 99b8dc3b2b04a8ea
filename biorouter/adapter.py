"""The edge between biorouter and LiteLLM, shared by the proxy hook and the Python API.

Both entry points do the same three things, so both call these functions: gather the signals
for a request (:func:`gather_signals`), let the pure ``decide()`` choose, and translate the
Decision into the arguments LiteLLM's router understands (:func:`litellm_arguments`). Keeping
this in one place is what guarantees the same decision for the same request on both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from biorouter.classifier import TaskClassifier
from biorouter.decision import AUTO_MODELS, Decision, Signals
from biorouter.errors import ClassifierError, RequestError
from biorouter.profiles import Profile
from biorouter.request_view import RequestView
from biorouter.sensitivity import SensitivityDetector

__all__ = ["METADATA_KEY", "TASK_HINT_KEY", "gather_signals", "litellm_arguments", "task_hint"]

METADATA_KEY = "biorouter"
TASK_HINT_KEY = "biorouter_task"  # metadata key a client may set to name its task

# Scanning runs on the event loop below this many characters, in a worker thread above it.
_INLINE_SCAN_CHARS = 20_000
_NO_CACHE = {"no-cache": True, "no-store": True}


def task_hint(request: Mapping[str, Any]) -> str | None:
    """The client's task label from ``metadata.biorouter_task`` (or ``litellm_metadata``), if any."""
    for key in ("metadata", "litellm_metadata"):
        metadata = request.get(key)
        if isinstance(metadata, Mapping) and metadata.get(TASK_HINT_KEY) is not None:
            hint = metadata[TASK_HINT_KEY]
            if not isinstance(hint, str) or not hint:
                raise RequestError(f"metadata.{TASK_HINT_KEY} must be a task name (a string), not {hint!r}")
            return hint
    return None


async def scan(detector: SensitivityDetector, view: RequestView) -> tuple[str, ...]:
    if sum(len(t) for t in view.texts) <= _INLINE_SCAN_CHARS:
        return detector.scan(view.texts)
    return await asyncio.to_thread(detector.scan, view.texts)


async def gather_signals(
    view: RequestView,
    requested_model: str,
    classifier: TaskClassifier,
    *,
    detector: SensitivityDetector | None = None,
    classify_named: bool = False,
    hint: str | None = None,
) -> Signals:
    """Detect sensitive content, then classify when biorouter must choose (or must check a named cloud group).

    A classifier failure becomes a signal, not an error. Sensitive text is never handed to an
    encoder that is not declared local.
    """
    sensitive = await scan(detector, view) if detector is not None else ()
    base: dict[str, Any] = {
        "requested_model": requested_model,
        "text_sha256": view.text_sha256,
        "sensitive_rules": sensitive,
        "task_hint": hint,
    }
    if requested_model not in AUTO_MODELS and not classify_named:
        return Signals(**base)
    if sensitive and not classifier.keeps_text_local:
        return Signals(**base, classifier_error="sensitive text is not sent to a cloud embeddings endpoint")
    try:
        result = await classifier.aclassify(view.text)
    except ClassifierError as e:
        return Signals(**base, classifier_error=str(e))
    return Signals(**base, task=result.task, confidence=result.confidence, scores=result.scores)


def litellm_arguments(decision: Decision, request: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """The request fields to set so LiteLLM's router serves ``decision``.

    For a routed request ``fallbacks`` is always set, even empty: the per-request list replaces the
    router's configured fallbacks, so LiteLLM never falls back to a group biorouter did not allow.
    A local-only request also gets its own context-window and content-policy chains, and is kept
    out of any response cache unless the profile declares the cache on-premises. A request that
    names a group directly keeps LiteLLM's configured fallbacks for that group unless it is
    local-only (the guard callback still drops cloud deployments on every hop).
    """
    updates: dict[str, Any] = {"model": decision.group}
    chain = [{decision.group: list(decision.fallbacks)}] if decision.fallbacks else []
    if decision.mode != "passthrough" or decision.local_only:
        updates["fallbacks"] = chain
    if decision.local_only:
        updates["context_window_fallbacks"] = chain
        updates["content_policy_fallbacks"] = []
    if decision.mode != "passthrough":
        for key, value in decision.defaults.items():
            if request.get(key) is None:
                updates[key] = value
        if request.get("timeout") is None:
            updates["timeout"] = profile.behaviour.timeout_s
        if request.get("num_retries") is None:
            updates["num_retries"] = profile.behaviour.num_retries
    cache = profile.behaviour.cache
    if cache == "off" or (decision.local_only and cache != "on-premises"):
        updates["cache"] = dict(_NO_CACHE)
    metadata = dict(request.get("metadata") or {})
    metadata[METADATA_KEY] = decision.summary()
    updates["metadata"] = metadata
    return updates
