"""The edge between biorouter and LiteLLM, shared by the proxy hook and the Python API.

Both entry points do the same three things, so both call these functions: gather the signals
for a request (:func:`gather_signals`), let the pure ``decide()`` choose, and translate the
Decision into the arguments LiteLLM's router understands (:func:`litellm_arguments`). Keeping
this in one place is what guarantees the same decision for the same request on both paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biorouter.classifier import TaskClassifier
from biorouter.decision import AUTO_MODELS, Decision, Signals
from biorouter.errors import ClassifierError
from biorouter.profiles import Profile
from biorouter.request_view import RequestView

__all__ = ["METADATA_KEY", "gather_signals", "litellm_arguments"]

METADATA_KEY = "biorouter"


async def gather_signals(view: RequestView, requested_model: str, classifier: TaskClassifier) -> Signals:
    """Classify when biorouter must choose; a classifier failure becomes a signal, not an error."""
    base = {"requested_model": requested_model, "text_sha256": view.text_sha256}
    if requested_model not in AUTO_MODELS:
        return Signals(**base)
    try:
        result = await classifier.aclassify(view.text)
    except ClassifierError as e:
        return Signals(**base, classifier_error=str(e))
    return Signals(**base, task=result.task, confidence=result.confidence, scores=result.scores)


def litellm_arguments(decision: Decision, request: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """The request fields to set so LiteLLM's router serves ``decision``.

    For a routed request ``fallbacks`` is always set, even empty: the per-request list replaces the
    router's configured fallbacks, so LiteLLM never falls back to a group biorouter did not allow.
    A request that names a group directly keeps LiteLLM's configured fallbacks for that group.
    """
    updates: dict[str, Any] = {"model": decision.group}
    if decision.mode != "passthrough":
        updates["fallbacks"] = [{decision.group: list(decision.fallbacks)}] if decision.fallbacks else []
        for key, value in decision.defaults.items():
            if request.get(key) is None:
                updates[key] = value
        if request.get("timeout") is None:
            updates["timeout"] = profile.behaviour.timeout_s
        if request.get("num_retries") is None:
            updates["num_retries"] = profile.behaviour.num_retries
    metadata = dict(request.get("metadata") or {})
    metadata[METADATA_KEY] = decision.summary()
    updates["metadata"] = metadata
    return updates
