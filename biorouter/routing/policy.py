"""``decide()``: the one pure function that turns signals and a profile into a Decision.

Pure means: the same signals, profile and catalogue always give the same Decision, with no I/O,
no clock, no randomness and no LiteLLM types. The proxy hook and the Python API gather the
signals, call this, and translate the result at their edge (see :mod:`biorouter.serving.adapter`).

Rules, in order:
1. A request that names a group directly (not ``auto``) passes through to it, unless it is
   local-only and the group is not local: then it is refused, or re-routed to the local groups
   its task would use when the profile says ``sensitive_cloud_request: reroute``.
2. An embedding request (``model: auto`` on ``/v1/embeddings``) takes the profile's
   ``embedding_route``. A client's task hint (``metadata.biorouter_task``) picks the route when it
   names a task of the profile. No usable classification (empty text, classifier down) or a task
   the profile has no route for: the profile's default route. A score below the task's threshold
   (``classifier.per_task``, else ``min_confidence``) is unsure: the default route, or with
   ``when_unsure: safer_of_top_two`` the safer of the two best tasks' routes. Intelligence fails soft.
   Before that, a task listed under ``classifier.prefer`` whose score is within its margin of the
   best task's takes the request (safety: a missed harmful request costs more than a detour).
2b. A route that lists ``tiers`` sends the request to its complexity tier's group (the estimate
   comes with the signals; see :mod:`biorouter.routing.complexity`); the route's ``allow_cloud`` still holds.
3. Only groups that serve the request's kind (chat or embedding) are offered, and only groups
   whose context window (``max_input_tokens``) holds the prompt plus ``max_tokens``. When none of
   the route's groups does, the default route's and then the profile's other groups are tried
   (governance and budgets still apply); when none can, the request is refused before any call.
4. A request is local-only when any rule says so: sensitive content (the detector), the chosen
   route's ``allow_cloud: false``, or the route of the task the classifier saw, however unsure
   (a hint or a low score never lifts it). Only local groups are offered, as primary and as
   fallbacks; if the route has none, the default route's local groups; if none is left, the
   request is refused with :class:`KeptLocalError`. Governance fails closed.
"""

from __future__ import annotations

from biorouter.errors import KeptLocalError, RequestError, RoutingError, quoted_label
from biorouter.routing.catalogue import Catalogue
from biorouter.routing.decision import AUTO_MODELS, BudgetView, Decision, Mode, Signals
from biorouter.routing.profiles import Profile, Route
from biorouter.routing.strategies import attach_plan

__all__ = ["DEFAULT_ROUTE", "decide", "local_only_rules"]

DEFAULT_ROUTE = "default_route"  # the rule label of the profile's default route
EMBEDDING = "embedding_route"  # the rule label of the profile's embedding route


def _choose_route(signals: Signals, profile: Profile, catalogue: Catalogue) -> tuple[Route, Mode, list[str], str]:
    """The route, the mode, why, and the route's label (its task, or ``default_route``)."""
    if signals.kind == "embedding":
        if profile.embedding_route is None:
            raise RequestError(
                f"profile '{profile.name}' has no embedding_route: name an embedding group as the model, "
                "or add embedding_route to the profile"
            )
        return profile.embedding_route, "routed", ["embedding request -> the profile's embedding_route"], EMBEDDING
    if signals.task_hint is not None:
        route = profile.route_for(signals.task_hint)
        if route is None:
            known = ", ".join(sorted(profile.routes))
            raise RequestError(
                f"unknown task {quoted_label(signals.task_hint)} in metadata.biorouter_task (profile '{profile.name}' "
                f"routes: {known})"
            )
        return route, "routed", [f"client task hint '{signals.task_hint}' -> route"], signals.task_hint
    if signals.classifier_error is not None:
        why = f"classifier unavailable ({signals.classifier_error}): default route"
        return profile.default_route, "default", [why], DEFAULT_ROUTE
    if signals.task is None:
        return profile.default_route, "default", ["no user text to classify: default route"], DEFAULT_ROUTE
    preferred = _preferred(signals, profile)
    if preferred is not None:
        return preferred
    threshold = profile.classifier.threshold(signals.task)
    if signals.confidence < threshold:
        unsure = f"task '{signals.task}' confidence {signals.confidence:.3f} below {threshold:.3f}"
        if profile.classifier.when_unsure == "safer_of_top_two":
            return _safer_of_top_two(signals, profile, catalogue, unsure)
        return profile.default_route, "default", [f"{unsure}: default route"], DEFAULT_ROUTE
    route = profile.route_for(signals.task)
    if route is None:
        why = f"profile has no route for task '{signals.task}': default route"
        return profile.default_route, "default", [why], DEFAULT_ROUTE
    return route, "routed", [f"task '{signals.task}' (confidence {signals.confidence:.3f}) -> route"], signals.task


def _preferred(signals: Signals, profile: Profile) -> tuple[Route, Mode, list[str], str] | None:
    """The route of a preferred task (``classifier.prefer``) scoring within its margin of the best, if any.

    Missing a harmful request costs more than sending a harmless one to the guard model, so a
    task listed under ``classifier.prefer`` wins whenever it is close to the top, sure or not.
    Of several such tasks the best-scoring one wins.
    """
    if not signals.scores or signals.task is None:
        return None
    top = max(signals.scores.values())
    close = [
        (score, task)
        for task, margin in profile.classifier.prefer.items()
        if task != signals.task
        and (score := signals.scores.get(task)) is not None
        and top - score <= margin
        and profile.route_for(task) is not None
    ]
    if not close:
        return None
    score, task = max(close)
    route = profile.route_for(task)
    assert route is not None
    margin = profile.classifier.prefer[task]
    why = (
        f"task '{task}' scores {score:.3f}, within {margin:g} of the best '{signals.task}' ({top:.3f}): "
        "preferred (classifier.prefer) -> route"
    )
    return route, "routed", [why], task


def _safer_of_top_two(
    signals: Signals, profile: Profile, catalogue: Catalogue, unsure: str
) -> tuple[Route, Mode, list[str], str]:
    """Of the routes of the two best-scoring tasks, the one that keeps data safer.

    Safest is a route with ``allow_cloud: false``, then one whose own group is local, then the
    rest; on a tie the better-scoring task wins. A task without a route counts as the default
    route, as it would when sure.
    """
    ranked = [task for task, _ in sorted(signals.scores.items(), key=lambda item: (-item[1], item[0]))[:2]]
    if not ranked:
        return profile.default_route, "default", [f"{unsure}: default route"], DEFAULT_ROUTE

    def safety(task: str) -> int:
        route = profile.route_for(task) or profile.default_route
        local = route.group in catalogue.groups and catalogue.is_local(route.group)
        return 2 if not route.allow_cloud else 1 if local else 0

    best = max(ranked, key=lambda task: (safety(task), -ranked.index(task)))
    names = " and ".join(f"'{task}'" for task in ranked)
    why = ("keeps data local", "is served locally", "scores highest")[2 - safety(best)]
    route = profile.route_for(best)
    if route is None:
        return profile.default_route, "default", [f"{unsure}: safer of {names} is the default route"], DEFAULT_ROUTE
    return route, "routed", [f"{unsure}: safer of {names} is '{best}' ({why})"], best


def _decided_task(signals: Signals, mode: Mode, label: str) -> str | None:
    """The task the Decision shows: the routed task (which may be the safer second one), else the classifier's."""
    if signals.kind == "embedding":
        return None
    if mode == "routed" and label not in (DEFAULT_ROUTE, EMBEDDING):
        return label
    return signals.task


def local_only_rules(signals: Signals, profile: Profile, route: Route | None, route_label: str) -> tuple[str, ...]:
    """Every rule that keeps this request local, as ``content:<rule>`` / ``route:<task>`` labels."""
    rules = [f"content:{rule}" for rule in signals.sensitive_rules]
    if route is not None and not route.allow_cloud:
        rules.append(f"route:{route_label}")
    seen = profile.route_for(signals.task) if signals.task is not None else None
    if seen is not None and not seen.allow_cloud and f"route:{signals.task}" not in rules:
        rules.append(f"route:{signals.task}")
    return tuple(rules)


def _serves(mode: str, kind: str) -> bool:
    return mode == "embedding" if kind == "embedding" else mode != "embedding"


def _tokens_needed(signals: Signals, route: Route) -> int | None:
    """Prompt plus completion tokens the group's window must hold; None when the prompt was not counted."""
    if signals.prompt_tokens is None:
        return None
    completion = signals.max_tokens if signals.max_tokens is not None else (route.max_tokens or 0)
    return signals.prompt_tokens + completion


def _too_small(group: str, needed: int | None, catalogue: Catalogue) -> str | None:
    window = catalogue.groups[group].max_input_tokens
    if needed is None or window is None or needed <= window:
        return None
    return f"group '{group}' holds {window} tokens, the request needs {needed}: skipped"


def _allowed_groups(
    groups: tuple[str, ...],
    signals: Signals,
    local_only: bool,
    catalogue: Catalogue,
    reasons: list[str],
    needed: int | None = None,
) -> list[str]:
    allowed = []
    for group in groups:
        if group not in catalogue.groups:
            reasons.append(f"group '{group}' is not in litellm_config: skipped")
        elif not _serves(catalogue.groups[group].mode, signals.kind):
            reasons.append(f"group '{group}' serves {catalogue.groups[group].mode} models, not {signals.kind}: skipped")
        elif local_only and not catalogue.is_local(group):
            reasons.append(f"group '{group}' is cloud: skipped for a local-only request")
        elif (small := _too_small(group, needed, catalogue)) is not None:
            reasons.append(small)
        else:
            allowed.append(group)
    return allowed


def _profile_groups(profile: Profile) -> tuple[str, ...]:
    """Every group the profile names, in the order it names them (default route first)."""
    routes = (profile.default_route, *profile.routes.values())
    return tuple(dict.fromkeys(group for route in routes for group in (route.group, *route.fallbacks)))


def _passthrough(signals: Signals, profile: Profile, catalogue: Catalogue) -> tuple[Decision | None, list[str]]:
    """The Decision for a request naming a group, or None when it must be re-routed."""
    requested = signals.requested_model
    if requested not in catalogue.groups:
        known = ", ".join(catalogue.names())
        raise RequestError(f"unknown model {quoted_label(requested)}: use 'auto' or a deployment group ({known})")
    rules = local_only_rules(signals, profile, None, "")
    if not rules or catalogue.is_local(requested):
        return (
            Decision(
                profile=profile.name,
                mode="passthrough",
                group=requested,
                local_only=bool(rules),
                local_only_rules=rules,
                local_only_reason=_reason(rules),
                reasons=(f"client asked for group '{requested}'",),
                text_sha256=signals.text_sha256,
            ),
            [],
        )
    if profile.governance.sensitive_cloud_request == "refuse":
        raise KeptLocalError(
            f"profile '{profile.name}': the request names cloud group '{requested}' but must stay local "
            f"({_reason(rules)}); refused. Ask for 'auto' or a local group.",
            rules=rules,
        )
    return None, [f"client asked for cloud group '{requested}' but the request is local-only: re-routed"]


def _reason(rules: tuple[str, ...]) -> str | None:
    if not rules:
        return None
    parts = []
    for rule in rules:
        kind, _, name = rule.partition(":")
        if kind == "content":
            parts.append(f"sensitive content ({name})")
        elif name == DEFAULT_ROUTE:
            parts.append("the default route sets allow_cloud: false")
        else:
            parts.append(f"route '{name}' sets allow_cloud: false")
    return "; ".join(parts)


def _known(groups: tuple[str, ...], catalogue: Catalogue) -> list[str]:
    return [group for group in groups if group in catalogue.groups]


def _nothing_fits(chain: tuple[str, ...], needed: int, catalogue: Catalogue, kind: str) -> bool:
    """No group of this kind in ``chain`` holds ``needed`` tokens, whatever governance and budgets say."""
    return not any(
        _serves(catalogue.groups[group].mode, kind) and _too_small(group, needed, catalogue) is None
        for group in _known(chain, catalogue)
    )


def _over_request_limit(group: str, budget: BudgetView, profile: Profile) -> str | None:
    limit = profile.costs.max_per_request_usd
    estimate = budget.estimates.get(group)
    if limit is None or estimate is None or estimate <= limit:
        return None
    return f"estimate ${estimate:.4f} over max_per_request_usd ${limit:.2f}"


def _within_budget(
    allowed: list[str], budget: BudgetView | None, profile: Profile, catalogue: Catalogue, reasons: list[str]
) -> list[str]:
    """Drop cloud groups while cloud spend is off, and groups estimated over the per-request limit.

    Local groups cost nothing and are never dropped. When the first choice is over the per-request
    limit, the cheapest remaining group serves first.
    """
    if budget is None:
        return allowed
    kept = []
    for group in allowed:
        if budget.cloud_blocked and not catalogue.is_local(group):
            reasons.append(f"group '{group}' is cloud: skipped, {budget.cloud_blocked}")
            continue
        over = _over_request_limit(group, budget, profile)
        if over is not None:
            reasons.append(f"group '{group}' {over}: skipped")
            continue
        kept.append(group)
    if allowed and kept and kept[0] != allowed[0] and _over_request_limit(allowed[0], budget, profile):
        cost = {g: budget.estimates.get(g) for g in kept}
        kept.sort(key=lambda g: (cost[g] is None, cost[g] or 0.0))  # stable: chain order among equals
        reasons.append(f"cheapest group under the per-request limit: '{kept[0]}'")
    return kept


def _budget_refusal(group: str, budget: BudgetView | None, profile: Profile, catalogue: Catalogue) -> str | None:
    """Why a request naming ``group`` directly must be refused for budget reasons, if it must."""
    if budget is None or catalogue.is_local(group):
        return None
    if budget.cloud_blocked:
        return f"cloud spend is off: {budget.cloud_blocked}"
    return _over_request_limit(group, budget, profile)


def decide(signals: Signals, profile: Profile, catalogue: Catalogue, budget: BudgetView | None = None) -> Decision:
    """Choose the deployment group and allowed fallbacks for one request.

    ``budget`` (from the ledger) carries the request's cost estimate per group and whether cloud
    spend is off; without it no budget rule applies.
    """
    prefix: list[str] = []
    if signals.requested_model not in AUTO_MODELS:
        decision, prefix = _passthrough(signals, profile, catalogue)
        if decision is not None:
            refusal = _budget_refusal(decision.group, budget, profile, catalogue)
            if refusal is not None:
                raise RoutingError(f"profile '{profile.name}': '{decision.group}' refused: {refusal}")
            if budget is not None:
                decision = decision.model_copy(
                    update={
                        "estimated_cost_usd": budget.estimates.get(decision.group),
                        "budget_warnings": budget.warnings,
                    }
                )
            return decision

    route, mode, reasons, label = _choose_route(signals, profile, catalogue)
    reasons = prefix + reasons
    rules = local_only_rules(signals, profile, route, label)
    tier = None
    if route.tiers and signals.complexity is not None:
        tier = signals.complexity.tier
        reasons.append(signals.complexity.explain())
        if tier in route.tiers:
            route = route.for_tier(tier)
            reasons.append(f"tier {tier} -> '{route.group}'")
    local_only = bool(rules)
    chain = (route.group, *route.fallbacks)
    needed = _tokens_needed(signals, route)
    allowed = _allowed_groups(chain, signals, local_only, catalogue, reasons, needed)
    if not allowed and local_only and route is not profile.default_route:
        reasons.append("no local group in the route: the default route's local groups serve it")
        default_chain = (profile.default_route.group, *profile.default_route.fallbacks)
        chain = chain + tuple(g for g in default_chain if g not in chain)
        allowed = _allowed_groups(default_chain, signals, local_only, catalogue, [], needed)
    if not allowed and needed is not None and any(_too_small(g, needed, catalogue) for g in _known(chain, catalogue)):
        wider = tuple(g for g in _profile_groups(profile) if g not in chain)
        allowed = _allowed_groups(wider, signals, local_only, catalogue, [], needed)
        if allowed:
            reasons.append(f"the route's groups are too small for {needed} tokens: '{allowed[0]}' holds them")
        chain = chain + wider
    allowed = _within_budget(allowed, budget, profile, catalogue, reasons)
    if not allowed and needed is not None and _nothing_fits(chain, needed, catalogue, signals.kind):
        windows = [(catalogue.groups[g].max_input_tokens or 0, g) for g in _known(chain, catalogue)]
        largest, name = max(windows) if windows else (0, "none")
        raise RequestError(
            f"the request needs {needed} tokens (prompt {signals.prompt_tokens} + max_tokens "
            f"{needed - (signals.prompt_tokens or 0)}) and no group of profile '{profile.name}' holds that many "
            f"(largest: '{name}', {largest}); shorten the prompt or lower max_tokens"
        )
    if not allowed:
        tried = ", ".join(chain)
        if local_only:
            raise KeptLocalError(
                f"profile '{profile.name}': request kept local ({_reason(rules)}) and no local group can serve "
                f"it; tried {tried} ({'; '.join(reasons)})",
                rules=rules,
            )
        raise RoutingError(
            f"profile '{profile.name}': no deployment group can serve this request; tried {tried} "
            f"({'; '.join(reasons)})"
        )
    if allowed[0] != route.group:
        reasons.append(f"serving from '{allowed[0]}' instead of '{route.group}'")
    defaults = {
        key: value
        for key, value in (("max_tokens", route.max_tokens), ("temperature", route.temperature))
        if value is not None
    }
    decision = Decision(
        profile=profile.name,
        mode=mode,
        group=allowed[0],
        fallbacks=tuple(allowed[1:]),
        task=_decided_task(signals, mode, label),
        confidence=signals.confidence if signals.task is not None and signals.kind == "chat" else None,
        scores=dict(signals.scores),
        local_only=local_only,
        local_only_rules=rules,
        local_only_reason=_reason(rules),
        reasons=(*reasons, *_classifier_notes(signals)),
        defaults=defaults,
        text_sha256=signals.text_sha256,
        estimated_cost_usd=budget.estimates.get(allowed[0]) if budget is not None else None,
        budget_warnings=budget.warnings if budget is not None else (),
        tier=tier,
        complexity=signals.complexity.score if tier is not None and signals.complexity is not None else None,
        degraded=("classifier:lexical",) if signals.classifier_source == "lexical" else (),
    )
    return attach_plan(decision, signals, profile, route, budget)  # race/ensemble/cascade: biorouter.routing.strategies


def _classifier_notes(signals: Signals) -> tuple[str, ...]:
    """The reason to show when the task came from the lexical fallback (the encoder was down)."""
    if signals.classifier_source != "lexical":
        return ()
    return (f"task from the lexical fallback classifier, degraded ({signals.classifier_fallback or 'encoder down'})",)
