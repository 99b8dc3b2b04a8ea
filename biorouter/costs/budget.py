"""Budgets at request time: between the ledger and ``decide()``.

For each request the keeper (1) estimates what each priced group would cost, (2) reads the
profile's budget scopes from the ledger — daily and monthly for the profile, and for the task when
the profile gives it its own — and tells ``decide()`` whether cloud spend is off and which budgets
are near their limit; after the decision it (3) reserves the estimate, so concurrent requests
cannot all spend the last dollar, and after the call (4) settles the actual cost.

Budgets only ever limit cloud spend: local deployments cost $0 and keep serving when every budget
is spent — a request that would have gone to the cloud is downgraded to the route's local groups.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from biorouter import metrics
from biorouter.costs.ledger import BudgetScope, Denial, Ledger, Reservation, SpendRecord, format_usd, period_id
from biorouter.costs.prices import Prices, count_prompt_tokens, estimate_usd, group_prices
from biorouter.routing.catalogue import Catalogue, Deployment
from biorouter.routing.decision import BudgetView, Decision, Signals
from biorouter.routing.profiles import Profile

__all__ = ["BudgetKeeper"]

logger = logging.getLogger("biorouter.budget")

_PERIOD_WORD = {"day": "daily", "month": "monthly"}


class BudgetKeeper:
    """Estimates, budget views, reservations and settlements for one engine."""

    def __init__(self, ledger: Ledger, deployments: Sequence[Deployment], catalogue: Catalogue) -> None:
        self.ledger = ledger
        self._deployments = list(deployments)
        self._catalogue = catalogue
        self._prices: dict[str, Prices | None] | None = None
        self._warned: set[tuple[str, str, str]] = set()  # (scope, period, period id) already logged

    @property
    def prices(self) -> Mapping[str, Prices | None]:
        """Group prices, looked up once on first use (LiteLLM's price map is imported then)."""
        if self._prices is None:
            self._prices = group_prices(self._deployments)
        return self._prices

    @staticmethod
    def scopes(profile: Profile, task: str | None) -> list[BudgetScope]:
        """The budgets a request of ``task`` under ``profile`` counts against."""
        costs = profile.costs
        found: list[BudgetScope] = []
        pairs = [(f"profile:{profile.name}", costs.daily_budget_usd, costs.monthly_budget_usd)]
        task_budget = costs.per_task.get(task) if task else None
        if task_budget is not None:
            key = f"profile:{profile.name}:task:{task}"
            pairs.append((key, task_budget.daily_budget_usd, task_budget.monthly_budget_usd))
        for key, daily, monthly in pairs:
            if daily:
                found.append(BudgetScope(key=key, period="day", limit_usd=daily))
            if monthly:
                found.append(BudgetScope(key=key, period="month", limit_usd=monthly))
        return found

    def estimates(
        self, profile: Profile, messages: Any, request: Mapping[str, Any], prompt_tokens: int | None = None
    ) -> dict[str, float | None]:
        """USD per priced group of the profile; groups that cost nothing are 0 without counting tokens.

        ``prompt_tokens``, when the decision already counted them, saves counting again.
        """
        max_tokens = request.get("max_tokens") or profile.costs.default_max_tokens
        groups = sorted(profile.groups() | ({str(request["model"])} if request.get("model") else set()))
        priced = {g: self.prices.get(g) for g in groups if g in self._catalogue.groups}
        result: dict[str, float | None] = {g: 0.0 for g, p in priced.items() if p is not None and p.free}
        if any(p is None or not p.free for p in priced.values()):
            tokens = prompt_tokens if prompt_tokens is not None else count_prompt_tokens(messages)
            for group, price in priced.items():
                if price is None:
                    result[group] = None
                elif not price.free:
                    result[group] = round(estimate_usd(price, tokens, int(max_tokens)), 6)
        return result

    async def view(
        self, profile: Profile, signals: Signals, messages: Any, request: Mapping[str, Any]
    ) -> tuple[BudgetView, list[BudgetScope]]:
        """The budget picture ``decide()`` needs, and the scopes this request counts against."""
        task = signals.task_hint or (
            signals.task if signals.task and signals.confidence >= profile.classifier.threshold(signals.task) else None
        )
        scopes = self.scopes(profile, task)
        estimates = self.estimates(profile, messages, request, signals.prompt_tokens)
        blocked: str | None = None
        warnings: list[str] = []
        usages = await self.ledger.usage(scopes) if scopes else []
        metrics.record_budget_usage(usages)  # the gauges ride on this read: no extra ledger round trip
        if scopes and self.ledger.degraded and profile.costs.ledger_unavailable == "closed":  # known after a call
            blocked = "the shared budget ledger is unreachable (ledger_unavailable: closed)"
        for usage in usages:
            scope = usage.scope
            name = f"{_PERIOD_WORD[scope.period]} budget of {scope.key} ({format_usd(scope.limit_usd)})"
            if usage.spent_usd >= scope.limit_usd:
                blocked = blocked or f"{name} reached: {format_usd(usage.spent_usd)} spent"
            elif usage.fraction >= profile.costs.warn_at:
                warnings.append(f"{name}: {usage.fraction:.0%} used")
                self._log_crossing(scope, f"{name}: {usage.fraction:.0%} used", profile.costs.warn_at)
        return BudgetView(estimates=estimates, cloud_blocked=blocked, warnings=tuple(warnings)), scopes

    def _log_crossing(self, scope: BudgetScope, warning: str, warn_at: float) -> None:
        """Log a budget's warning once, when its period's spend first crosses ``warn_at`` (the header says it
        on every response; a log line per request would drown the log)."""
        key = (scope.key, scope.period, period_id(scope.period, datetime.now(UTC)))
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning("biorouter budget: %s (warn_at %.0f%%)", warning, warn_at * 100)

    async def reserve(
        self, decision: Decision, view: BudgetView, scopes: Sequence[BudgetScope]
    ) -> Reservation | Denial | None:
        """Hold the most this request can cost among the cloud groups it may reach (None: it cannot cost).

        A single call reaches one group (its fallbacks only if it fails): the dearest is held. A
        strategy may call every group of its plan, so their sum is held (a cascade's worst case).
        """
        reachable = [decision.group, *decision.fallbacks]
        amounts = [view.estimates.get(g) or 0.0 for g in reachable if not self._catalogue.is_local(g)]
        amount = max(amounts, default=0.0)
        plan = decision.strategy
        if plan is not None and plan.fans_out:  # the whole fan-out: every group it may call, judge included
            called = [*plan.groups, *([plan.judge] if plan.judge else [])]
            amount = sum(view.estimates.get(g) or 0.0 for g in called if not self._catalogue.is_local(g))
        if amount <= 0 or not scopes:
            return None
        return await self.ledger.reserve(scopes, amount)

    async def settle(
        self,
        reservation: Reservation | None,
        scopes: Sequence[BudgetScope],
        *,
        decision: Decision,
        group: str | None,
        cost_usd: float,
        seconds: float | None,
        user: str | None = None,
    ) -> None:
        """Count what the request cost (local groups: $0 and their GPU-seconds); never raises."""
        local = group is not None and self._catalogue.is_local(group)
        record = SpendRecord(
            time=datetime.now(UTC),
            cost_usd=max(cost_usd, 0.0),
            profile=decision.profile,
            task=decision.task,
            group=group,
            user=user,
            gpu_seconds=round(seconds, 3) if local and seconds else 0.0,
        )
        try:
            await self.ledger.settle(reservation, record, scopes)
        except Exception:
            logger.exception("biorouter ledger: could not record spend for group %s", group)
        else:
            metrics.record_budget_settled(scopes, record.cost_usd)

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is None:
            return
        try:
            await self.ledger.release(reservation)
        except Exception:
            logger.exception("biorouter ledger: could not release reservation %s", reservation.id)
