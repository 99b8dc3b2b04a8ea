"""The edge between biorouter and LiteLLM, shared by the proxy hook and the Python API.

Both entry points do the same three things, so both call these functions: gather the signals
for a request (:func:`gather_signals`), let the pure ``decide()`` choose, and translate the
Decision into the arguments LiteLLM's router understands (:func:`litellm_arguments`). Keeping
this in one place is what guarantees the same decision for the same request on both paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from biorouter.classify.classifier import Classification, TaskClassifier
from biorouter.errors import ClassifierError, RequestError, described
from biorouter.governance.request_view import RequestView
from biorouter.governance.sensitivity import SensitivityDetector
from biorouter.routing.decision import AUTO_MODELS, Decision, RequestKind, Signals
from biorouter.routing.profiles import Profile

__all__ = [
    "METADATA_KEY",
    "TASK_HINT_KEY",
    "gather_signals",
    "litellm_arguments",
    "prompt_tokens",
    "requested_max_tokens",
    "task_hint",
]

METADATA_KEY = "biorouter"
TASK_HINT_KEY = "biorouter_task"  # metadata key a client may set to name its task

# Below this many characters a scan runs on the event loop: behind the RE2 screens 10,000 characters of
# pasted code take about 1 ms, less than a worker thread's hand-off costs a busy proxy in CPU (GIL
# contention roughly doubled a threaded scan's CPU; bench/proxy_overhead.py: 0.6-1 ms less proxy CPU a
# request). Longer texts, and any the NER model would read, still go to a worker thread.
_INLINE_SCAN_CHARS = 20_000
_NO_CACHE = {"no-cache": True, "no-store": True}


def task_hint(request: Mapping[str, Any]) -> str | None:
    """The client's task label from ``metadata.biorouter_task`` (or ``litellm_metadata``), if any."""
    for key in ("metadata", "litellm_metadata"):
        metadata = request.get(key)
        if isinstance(metadata, Mapping) and metadata.get(TASK_HINT_KEY) is not None:
            hint = metadata[TASK_HINT_KEY]
            if not isinstance(hint, str) or not hint:
                raise RequestError(f"metadata.{TASK_HINT_KEY} must be a task name (a string), not {described(hint)}")
            return hint
    return None


def requested_max_tokens(request: Mapping[str, Any]) -> int | None:
    """The client's completion limit (``max_tokens`` or ``max_completion_tokens``), if it set one."""
    for key in ("max_tokens", "max_completion_tokens"):
        value = request.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RequestError(f"{key} must be a non-negative integer, not {described(value)}")
            return value
    return None


def prompt_tokens(view: RequestView, messages: Any, count_above: int | None) -> int | None:
    """The prompt's tokens, counted only when they could matter for a context window.

    A BPE token covers at least one byte, so the UTF-8 size of every text (plus a few tokens of
    framing per message) bounds the count from above; while that bound is under ``count_above``
    (the smallest window minus the largest completion budget) no window can be too small and
    nothing is counted, which keeps short requests free of tokenizer time.
    """
    if count_above is None:
        return None
    bound = sum(len(text.encode("utf-8", "replace")) for text in view.texts) + 8 * max(1, len(view.texts))
    if bound <= count_above:
        return None
    from biorouter.costs.prices import count_prompt_tokens

    return count_prompt_tokens(messages)


async def scan(detector: SensitivityDetector, view: RequestView) -> tuple[str, ...]:
    """Short texts are scanned on the loop; long ones, any before the NER model is in memory (its first
    load takes seconds), and any the model would read (milliseconds each), in a worker thread."""
    if sum(len(t) for t in view.texts) <= _INLINE_SCAN_CHARS and detector.ready and not detector.costly(view.texts):
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
    timings: dict[str, float] | None = None,
    kind: RequestKind = "chat",
) -> Signals:
    """Detect sensitive content, then classify when biorouter must choose (or must check a named cloud group).

    A classifier failure becomes a signal, not an error. Sensitive text is never handed to an
    encoder that is not declared local. ``timings``, when given, receives the seconds spent in
    ``"scan"`` and (when it ran) ``"classify"``, for metrics and the debug log.
    """
    timings = {} if timings is None else timings
    # An embedding request has no task to classify: it takes the profile's embedding route.
    needs_task = kind == "chat" and (requested_model in AUTO_MODELS or classify_named)
    # A local encoder embeds the text while it is scanned, and the decision waits for the slower
    # of the two (measured faster than one after the other even on two cores: the scan releases
    # the GIL). A cloud encoder waits for the scan's verdict.
    # The text is in the encoder thread before the scan starts (a short text's scan runs on the loop
    # beside it: 0.4-1.0 ms off the decision's p50, bench/decision_latency.py).
    begun_at = time.perf_counter()
    begun = classifier.begin(view.text) if needs_task and classifier.keeps_text_local else None
    early = None if begun is None else asyncio.ensure_future(_classify(classifier, view.text, timings, begun, begun_at))
    started = time.perf_counter()
    try:
        sensitive = await scan(detector, view) if detector is not None else ()
    except BaseException:
        for pending in (early, begun):
            if pending is not None:
                pending.cancel()
        raise
    timings["scan"] = time.perf_counter() - started
    base: dict[str, Any] = {
        "requested_model": requested_model,
        "text_sha256": view.text_sha256,
        "sensitive_rules": sensitive,
        "task_hint": hint,
        "kind": kind,
    }
    if not needs_task:
        return Signals(**base)
    if early is None and sensitive:  # no early start means the encoder is not local
        return Signals(**base, classifier_error="sensitive text is not sent to a cloud embeddings endpoint")
    result = await (early if early is not None else _classify(classifier, view.text, timings))
    if isinstance(result, str):
        return Signals(**base, classifier_error=result)
    return Signals(
        **base,
        task=result.task,
        confidence=result.confidence,
        scores=result.scores,
        classifier_source=result.source if result.task is not None else None,
        classifier_fallback=result.fallback_reason,
    )


async def _classify(
    classifier: TaskClassifier,
    text: str,
    timings: dict[str, float],
    begun: asyncio.Future[Classification] | None = None,
    started: float | None = None,
) -> Classification | str:
    """The classification (``begun`` already, or now), or why there is none (a failing classifier is a
    signal, not an error)."""
    started = time.perf_counter() if started is None else started
    try:
        return await (begun if begun is not None else classifier.aclassify(text))
    except ClassifierError as e:
        return str(e)
    finally:
        timings["classify"] = time.perf_counter() - started


def litellm_arguments(decision: Decision, request: Mapping[str, Any], profile: Profile) -> dict[str, Any]:
    """The request fields to set so LiteLLM's router serves ``decision``.

    For a routed request ``fallbacks`` and ``context_window_fallbacks`` are always set, even empty:
    the per-request lists replace the router's configured ones, so LiteLLM never falls back to a
    group biorouter did not allow. A local-only request also gets an empty content-policy chain, and is kept
    out of any response cache unless the profile declares the cache on-premises. A request that
    names a group directly keeps LiteLLM's configured fallbacks for that group unless it is
    local-only (the guard callback still drops cloud deployments on every hop).
    """
    updates: dict[str, Any] = {"model": decision.group}
    chain = [{decision.group: list(decision.fallbacks)}] if decision.fallbacks else []
    if decision.mode != "passthrough" or decision.local_only:
        updates["fallbacks"] = chain
        updates["context_window_fallbacks"] = chain  # decide() kept only groups whose window holds it
    if decision.local_only:
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
