"""``decide()``: the one pure function that turns signals and a profile into a Decision.

Pure means: the same signals, profile and catalogue always give the same Decision, with no I/O,
no clock, no randomness and no LiteLLM types. The proxy hook and the Python API gather the
signals, call this, and translate the result at their edge (see :mod:`biorouter.adapter`).

Rules, in order:
1. A request that names a group directly (not ``auto``) passes through to it.
2. No usable classification (empty text, classifier down, score below the profile's
   ``min_confidence``) or a task the profile has no route for: the profile's default route.
   Intelligence fails soft.
3. Only groups that serve the request's kind (chat or embedding) are offered.
4. A route with ``allow_cloud: false`` makes the request local-only: only local groups are
   offered, as primary and as fallbacks. If none is left, the request is refused. Governance
   fails closed.
"""

from __future__ import annotations

from biorouter.catalogue import Catalogue
from biorouter.decision import AUTO_MODELS, Decision, Mode, Signals
from biorouter.errors import RequestError, RoutingError
from biorouter.profiles import Profile, Route

__all__ = ["decide"]


def _choose_route(signals: Signals, profile: Profile) -> tuple[Route, Mode, list[str]]:
    if signals.classifier_error is not None:
        return (
            profile.default_route,
            "default",
            [f"classifier unavailable ({signals.classifier_error}): default route"],
        )
    if signals.task is None:
        return profile.default_route, "default", ["no user text to classify: default route"]
    threshold = profile.classifier.min_confidence
    if signals.confidence < threshold:
        return (
            profile.default_route,
            "default",
            [f"task '{signals.task}' confidence {signals.confidence:.3f} below {threshold:.3f}: default route"],
        )
    route = profile.route_for(signals.task)
    if route is None:
        return (
            profile.default_route,
            "default",
            [f"profile has no route for task '{signals.task}': default route"],
        )
    return route, "routed", [f"task '{signals.task}' (confidence {signals.confidence:.3f}) -> route"]


def _serves(mode: str, kind: str) -> bool:
    return mode == "embedding" if kind == "embedding" else mode != "embedding"


def _allowed_groups(
    route: Route, signals: Signals, local_only: bool, catalogue: Catalogue, reasons: list[str]
) -> list[str]:
    allowed = []
    for group in (route.group, *route.fallbacks):
        if group not in catalogue.groups:
            reasons.append(f"group '{group}' is not in litellm_config: skipped")
        elif not _serves(catalogue.groups[group].mode, signals.kind):
            reasons.append(f"group '{group}' serves {catalogue.groups[group].mode} models, not {signals.kind}: skipped")
        elif local_only and not catalogue.is_local(group):
            reasons.append(f"group '{group}' is cloud: skipped for a local-only request")
        else:
            allowed.append(group)
    return allowed


def decide(signals: Signals, profile: Profile, catalogue: Catalogue) -> Decision:
    """Choose the deployment group and allowed fallbacks for one request."""
    requested = signals.requested_model
    if requested not in AUTO_MODELS:
        if requested not in catalogue.groups:
            known = ", ".join(catalogue.names())
            raise RequestError(f"unknown model '{requested}': use 'auto' or a deployment group ({known})")
        return Decision(
            profile=profile.name,
            mode="passthrough",
            group=requested,
            reasons=(f"client asked for group '{requested}'",),
            text_sha256=signals.text_sha256,
        )

    route, mode, reasons = _choose_route(signals, profile)
    local_only = not route.allow_cloud
    local_only_reason = None
    if local_only:
        task = signals.task if mode == "routed" else "default route"
        local_only_reason = f"route '{task}' sets allow_cloud: false"
    allowed = _allowed_groups(route, signals, local_only, catalogue, reasons)
    if not allowed:
        kept = " and kept local" if local_only else ""
        raise RoutingError(
            f"profile '{profile.name}': no deployment group can serve this request{kept}; "
            f"tried {', '.join((route.group, *route.fallbacks))} ({'; '.join(reasons)})"
        )
    if allowed[0] != route.group:
        reasons.append(f"serving from '{allowed[0]}' instead of '{route.group}'")
    defaults = {
        key: value
        for key, value in (("max_tokens", route.max_tokens), ("temperature", route.temperature))
        if value is not None
    }
    return Decision(
        profile=profile.name,
        mode=mode,
        group=allowed[0],
        fallbacks=tuple(allowed[1:]),
        task=signals.task,
        confidence=signals.confidence if signals.task is not None else None,
        scores=dict(signals.scores),
        local_only=local_only,
        local_only_reason=local_only_reason,
        reasons=tuple(reasons),
        defaults=defaults,
        text_sha256=signals.text_sha256,
    )
