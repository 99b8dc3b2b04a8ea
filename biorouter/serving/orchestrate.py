"""Running a strategy plan: race, ensemble and cascade over the groups ``decide()`` allowed.

The runner is independent of where it runs: it is handed ``call(group, messages)``, a coroutine
that sends one request to one group through a LiteLLM router with the request's governance
arguments (the in-process engine's router, or the proxy's own ``llm_router``), so every inner
call is one ordinary routed call and the guard callback checks every hop of it. The runner only
decides which calls to make, when to stop and which answer wins:

- ``race`` starts every group's call at once and takes the first answer that passes the checks;
  the calls still running are cancelled. An error or a bad answer never wins; if no call gives a
  good answer the strategy fails. (LiteLLM's ``abatch_completion_fastest_response`` returns the
  first *response*, good or not, so asyncio tasks are used instead.)
- ``ensemble`` waits for every group (``asyncio.gather``), drops errors and bad answers, then votes
  (:func:`biorouter.routing.answer_checks.vote`) or asks the judge group to pick.
- ``cascade`` calls the groups one by one and stops at the first answer that passes the checks.

Each call's latency and LiteLLM cost are recorded in a :class:`~biorouter.routing.strategies.StrategyOutcome`
(callers put it in the Decision, the ledger and the response headers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

from biorouter import metrics
from biorouter.costs.ledger import BudgetScope, Reservation
from biorouter.errors import RoutingError
from biorouter.governance.request_view import view_request
from biorouter.routing.answer_checks import failed_check, judge_messages, parse_judge_pick, vote, wants_json
from biorouter.routing.decision import Decision
from biorouter.routing.plans import CallRecord, StrategyOutcome, StrategyPlan
from biorouter.serving.session import response_cost

__all__ = [
    "INNER_KEY",
    "OUTCOME_KEY",
    "Call",
    "StrategyFailed",
    "answer_text",
    "inner_arguments",
    "run_plan",
    "serve_in_process",
    "serve_plan",
]

logger = logging.getLogger("biorouter.strategy")

Call = Callable[[str, Any], Awaitable[Any]]
"""``call(group, messages)``: one routed call to ``group``; ``messages`` None sends the request's own."""
CostOf = Callable[[Any], float]
Role = Literal["answer", "judge"]


class StrategyFailed(RoutingError):
    """No call of a strategy gave a good answer; ``outcome`` lists what each call did."""

    def __init__(self, message: str, outcome: StrategyOutcome, errors: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.errors = tuple(errors)


def answer_text(response: Any) -> str:
    """The answer's text (tool calls count as an answer: their JSON)."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return ""
    content = getattr(message, "content", None)
    if content:
        return str(content)
    tool_calls = getattr(message, "tool_calls", None)
    return str(tool_calls) if tool_calls else ""


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel the calls still running and wait until they have stopped (their records say 'cancelled')."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


class _Runner:
    def __init__(self, plan: StrategyPlan, call: Call, cost_of: CostOf, *, json_asked: bool, question: str) -> None:
        self.plan = plan
        self.call = call
        self.cost_of = cost_of
        self.json_asked = json_asked
        self.question = question
        self.records: dict[str, CallRecord] = {}
        self.errors: list[BaseException] = []
        self.started = time.perf_counter()

    def verdict(self, response: Any) -> str | None:
        plan = self.plan
        return failed_check(
            answer_text(response),
            checks=plan.checks,
            validators=plan.validators,
            json_asked=self.json_asked,
            min_confidence=plan.min_confidence,
        )

    async def one(self, group: str, messages: Any = None, role: Role = "answer") -> tuple[str, Any, str | None]:
        """Call ``group`` and record how it went: (group, response, why it is bad or None), or the call's error."""
        key = group if role == "answer" else f"{group} (judge)"
        started = time.perf_counter()
        try:
            response = await self.call(group, messages)
        except asyncio.CancelledError:
            seconds = time.perf_counter() - started
            self.records[key] = CallRecord(group=group, outcome="cancelled", seconds=seconds, role=role)
            raise
        except Exception as e:
            self.errors.append(e)
            seconds = time.perf_counter() - started
            self.records[key] = CallRecord(
                group=group, outcome="error", seconds=seconds, detail=_first_line(e), role=role
            )
            raise
        bad = self.verdict(response) if role == "answer" else None
        self.records[key] = CallRecord(
            group=group,
            outcome="bad" if bad else "good",
            seconds=time.perf_counter() - started,
            cost_usd=max(self.cost_of(response), 0.0),
            detail=bad or "",
            role=role,
        )
        return group, response, bad

    def outcome(self, winner: str | None, why: str) -> StrategyOutcome:
        calls = [self.records.get(g) or CallRecord(group=g, outcome="not_called") for g in self.plan.groups]
        calls += [r for key, r in self.records.items() if r.role == "judge"]
        seconds = time.perf_counter() - self.started
        return StrategyOutcome(kind=self.plan.kind, winner=winner, why=why, calls=tuple(calls), seconds=seconds)

    def failed(self, why: str) -> StrategyFailed:
        outcome = self.outcome(None, why)
        details = "; ".join(f"{c.group}: {c.outcome}{' (' + c.detail + ')' if c.detail else ''}" for c in outcome.calls)
        return StrategyFailed(f"{self.plan.kind} strategy found no good answer ({details})", outcome, self.errors)

    # -- the three strategies ------------------------------------------------------------------

    async def race(self) -> tuple[Any, StrategyOutcome]:
        tasks = [asyncio.ensure_future(self.one(group)) for group in self.plan.groups]
        try:
            for finished in asyncio.as_completed(tasks):
                try:
                    group, response, bad = await finished
                except Exception:
                    continue
                if bad is None:
                    await _cancel(tasks)  # the others are cancelled before the outcome is written
                    return response, self.outcome(group, f"first good answer ({self.records[group].seconds:.3f} s)")
        finally:
            await _cancel(tasks)
        raise self.failed("no group gave a good answer")

    async def ensemble(self) -> tuple[Any, StrategyOutcome]:
        results = await asyncio.gather(*(self.one(g) for g in self.plan.groups), return_exceptions=True)
        good = [(result[0], result[1]) for result in results if isinstance(result, tuple) and result[2] is None]
        if not good:
            raise self.failed("no group gave a good answer")
        if len(good) == 1:
            return good[0][1], self.outcome(good[0][0], "the only good answer")
        texts = [answer_text(response) for _, response in good]
        if self.plan.vote == "judge" and self.plan.judge is not None:
            picked = await self.judged(texts)
            if isinstance(picked, tuple):
                index, why = picked
                return good[index][1], self.outcome(good[index][0], why)
            fallback = picked
        else:
            fallback = ""
        index, why = vote(texts, "normalised" if self.plan.vote in (None, "judge") else self.plan.vote)
        return good[index][1], self.outcome(good[index][0], fallback + why)

    async def judged(self, texts: list[str]) -> tuple[int, str] | str:
        """The judge's pick (index, why), or why it gave none (then the answers are voted on)."""
        judge = self.plan.judge
        assert judge is not None
        try:
            _, response, _ = await self.one(judge, judge_messages(self.question, texts), role="judge")
        except Exception as e:
            return f"judge '{judge}' failed ({_first_line(e)}): "
        index = parse_judge_pick(answer_text(response), len(texts))
        if index is None:
            return f"judge '{judge}' named no candidate: "
        return index, f"judge '{judge}' picked answer {index + 1} of {len(texts)}"

    async def cascade(self) -> tuple[Any, StrategyOutcome]:
        for step, group in enumerate(self.plan.groups):
            try:
                _, response, bad = await self.one(group)
            except Exception:
                continue
            if bad is None:
                why = "first group passed the checks" if step == 0 else f"escalated {step} time(s); passed the checks"
                return response, self.outcome(group, why)
        raise self.failed("every group failed a check or errored")


async def run_plan(
    plan: StrategyPlan,
    call: Call,
    *,
    cost_of: CostOf,
    json_asked: bool = False,
    question: str = "",
) -> tuple[Any, StrategyOutcome]:
    """Run a race, ensemble or cascade plan: the winning response and what every call did.

    Raises :class:`StrategyFailed` (carrying the outcome) when no call gives a good answer.
    ``question`` is the user's text, shown to an ensemble's judge group.
    """
    runner = _Runner(plan, call, cost_of, json_asked=json_asked, question=question)
    if plan.kind == "race":
        return await runner.race()
    if plan.kind == "ensemble":
        return await runner.ensemble()
    if plan.kind == "cascade":
        return await runner.cascade()
    raise ValueError(f"plan kind '{plan.kind}' does not fan out")


# -- serving a plan: the inner calls' arguments and the accounting, shared by both entry points ---------

INNER_KEY = "biorouter_strategy_call"
"""Metadata key marking an inner call of a strategy: the proxy hook's success callback leaves it alone
(the strategy counts its own calls once, in :func:`serve_plan`)."""


def inner_arguments(
    arguments: Mapping[str, Any], decision: Decision, group: str, messages: Any, serial: str
) -> dict[str, Any]:
    """One inner call's LiteLLM arguments: the request's governance arguments, to ``group`` only.

    ``fallbacks`` and ``context_window_fallbacks`` are empty: the plan already names every group it
    may use, and LiteLLM must not widen an inner call to another group. The Decision record stays
    in the metadata, so the guard callback still drops cloud deployments of a local-only request
    on every hop.
    """
    from biorouter.serving.adapter import METADATA_KEY

    metadata = {
        **dict(arguments.get("metadata") or {}),
        METADATA_KEY: decision.summary(),
        INNER_KEY: {"strategy": decision.strategy.kind if decision.strategy else "single", "group": group},
    }
    metadata.pop("biorouter_budget", None)  # the reservation is the whole strategy's, settled by serve_plan
    updates: dict[str, Any] = {
        "model": group,
        "fallbacks": [],
        "context_window_fallbacks": [],
        "metadata": metadata,
        "litellm_call_id": serial,
        "stream": False,
    }
    if messages is not None:
        updates["messages"] = messages
    return {**arguments, **updates}


async def serve_plan(
    engine: Any,
    decision: Decision,
    held: Reservation | None,
    scopes: Sequence[BudgetScope],
    *,
    router: Any,
    arguments: Mapping[str, Any],
    request_id: str,
    user: str | None = None,
) -> tuple[Any, Decision]:
    """Run ``decision``'s plan through ``router`` and count it: the winning response and the final Decision.

    Every inner call that answered is one ledger record (its group, LiteLLM's cost, GPU-seconds
    for local groups); the first settles the strategy's reservation. The session counts the
    strategy once, under the winning group. On :class:`StrategyFailed` the calls that answered
    are still recorded; the reservation and the refusal are the caller's.
    """
    plan = decision.strategy
    if plan is None or not plan.fans_out:
        raise ValueError("serve_plan needs a Decision whose strategy fans out")
    counter = iter(range(1, 1000))

    async def call(group: str, messages: Any) -> Any:
        args = inner_arguments(arguments, decision, group, messages, f"{request_id}:{next(counter)}:{group}")
        return await router.acompletion(**args)

    question = view_request(arguments.get("messages")).text if arguments.get("messages") else ""
    try:
        response, outcome = await run_plan(
            plan,
            call,
            cost_of=lambda r: response_cost(getattr(r, "_hidden_params", None)),
            json_asked=wants_json(arguments),
            question=question,
        )
    except StrategyFailed as e:
        await _settle_calls(engine, None, scopes, decision, e.outcome, user)
        logger.warning("biorouter strategy failed for request %s: %s", request_id, e)
        raise
    final = decision.model_copy(update={"strategy_outcome": outcome})
    settled = await _settle_calls(engine, held, scopes, final, outcome, user)
    if not settled:
        await engine.budget.release(held)
    engine.session.record(task=decision.task, group=outcome.winner, ok=True, cost_usd=outcome.cost_usd)
    metrics.record_served(decision.profile, decision.group, outcome.winner or decision.group)
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden["biorouter"] = final
        hidden[OUTCOME_KEY] = outcome.model_dump(mode="json")
        if decision.local_only:
            engine.record(final, request_id, outcome="served", **served_by(hidden, router))
    logger.info("biorouter strategy %s", json.dumps(outcome.model_dump(mode="json"), sort_keys=True))
    return response, final


OUTCOME_KEY = "biorouter_strategy"  # the outcome in a response's _hidden_params (the proxy's headers read it)


async def _settle_calls(
    engine: Any,
    held: Reservation | None,
    scopes: Sequence[BudgetScope],
    decision: Decision,
    outcome: StrategyOutcome,
    user: str | None,
) -> bool:
    """One ledger record per call that answered; True when the reservation was settled by the first."""
    reservation = held
    for record in outcome.calls:
        if record.outcome not in ("good", "bad"):
            continue
        await engine.budget.settle(
            reservation,
            scopes,
            decision=decision,
            group=record.group,
            cost_usd=record.cost_usd,
            seconds=record.seconds,
            user=user,
        )
        reservation = None
    return held is not None and reservation is None


async def serve_in_process(
    engine: Any,
    decision: Decision,
    held: Reservation | None,
    scopes: Sequence[BudgetScope],
    arguments: Mapping[str, Any],
    request_id: str,
) -> Any:
    """``BioRouter.acompletion`` for a plan that fans out: the response, or the refusal/failure it raises."""
    try:
        response, _ = await serve_plan(
            engine,
            decision,
            held,
            scopes,
            router=engine.router,
            arguments=arguments,
            request_id=request_id,
            user=arguments.get("user"),
        )
    except StrategyFailed as e:
        await engine.failed(decision, held, request_id, e)
        raise
    return response


def served_by(hidden: Mapping[str, Any], router: Any) -> dict[str, Any]:
    """Group, deployment id, api_base and locality of the deployment that answered."""
    deployment_id = hidden.get("model_id")
    deployment = router.get_deployment(model_id=deployment_id) if deployment_id else None
    info = deployment.model_info if deployment is not None else None
    locality = getattr(info, "locality", None) if info is not None else None
    if info is not None and locality is None and hasattr(info, "get"):
        locality = info.get("locality")
    return {
        "group": deployment.model_name if deployment is not None else None,
        "deployment_id": deployment_id,
        "api_base": hidden.get("api_base"),
        "locality": "local" if locality == "local" else "cloud",
    }
