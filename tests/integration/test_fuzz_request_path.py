"""Fuzzing the in-process request path with hypothesis: bad input is a BiorouterError, never a crash.

Two layers. The pure readers (``view_request``, ``check_request``, the ``max_tokens`` and task
hint readers) take 2,000 generated bodies in a couple of seconds. The whole decision path --
``BioRouter.prepare``, which both the proxy hook and ``acompletion`` call: the real detector, the
real classifier, budgets, ``decide()`` and ``litellm_arguments`` -- takes 600 more. Every example
must end in a Decision or a :class:`BiorouterError` subclass with a message; a TypeError, KeyError
or pydantic ValidationError escaping is a bug. Decisions are checked for governance too: a
request whose scanned text holds a patient or sample identifier is local-only, on local groups
only. The examples are derandomized (the same ones every run) and no example database is written.

The explicit cases at the end are the issue's bad-request list, in-process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from biorouter.errors import BiorouterError, RequestError
from biorouter.governance.request_view import check_request, view_request
from biorouter.routing.decision import Decision
from biorouter.serving.adapter import litellm_arguments, requested_max_tokens, task_hint
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT
from ..request_strategies import request_bodies

PURE_EXAMPLES = 2_000
ENGINE_EXAMPLES = 600
# What the development profile's detector must catch in any scanned text (see request_strategies).
SENSITIVE = re.compile(r"\bSMP-\d{6}(?!\d)|MRN: 00482913")

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def engine(classifier: Any) -> BioRouter:
    """The development profile over the shipped deployment list; no upstream is ever called here."""
    return BioRouter.from_settings(load_settings(ROOT), profile="development", classifier=classifier)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _model(body: dict[str, Any]) -> Any:
    """The model the proxy hook would pass on: a missing or empty one means ``auto``."""
    return body.get("model") or "auto"


@settings(FUZZ, max_examples=PURE_EXAMPLES)
@given(body=request_bodies())
def test_request_readers_raise_only_request_errors(body: dict[str, Any]) -> None:
    try:
        view = view_request(body["messages"])
        check_request(view, _model(body), body, task_hint(body))
        requested_max_tokens(body)
    except RequestError as e:
        message = str(e)
        assert message  # every refusal says what is wrong
        return
    assert view.message_count >= 1
    assert isinstance(view.text, str)


@settings(FUZZ, max_examples=ENGINE_EXAMPLES)
@given(body=request_bodies())
def test_decision_path_gives_a_decision_or_a_biorouter_error(
    engine: BioRouter, loop: asyncio.AbstractEventLoop, body: dict[str, Any]
) -> None:
    try:
        decision, held, _ = loop.run_until_complete(engine.prepare(body["messages"], _model(body), body))
    except BiorouterError as e:
        message = str(e)
        assert message
        return
    loop.run_until_complete(engine.budget.release(held))  # keep the day's cloud budget for later examples
    assert isinstance(decision, Decision)
    arguments = litellm_arguments(decision, body, engine.profile)
    assert arguments["model"] == decision.group
    texts = view_request(body["messages"]).texts
    if any(SENSITIVE.search(text) for text in texts):
        assert decision.local_only, decision.reasons
    if decision.local_only:
        assert all(engine.catalogue.is_local(group) for group in (decision.group, *decision.fallbacks))


USER = [{"role": "user", "content": "what is a p-value?"}]
BAD_INPUTS: dict[str, tuple[Any, Any, dict[str, Any], str]] = {
    "messages missing": (None, "auto", {}, "'messages' must be a list"),
    "messages empty": ([], "auto", {}, "'messages' is empty"),
    "messages a string": ("hello", "auto", {}, "'messages' must be a list"),
    "message not an object": (["hello"], "auto", {}, "messages[0] must be an object"),
    "content a number": ([{"role": "user", "content": 42}], "auto", {}, "messages[0]: message content"),
    "lone surrogate": ([{"role": "user", "content": "MRN \ud800"}], "auto", {}, "messages[0] holds text that is not"),
    "surrogate in a tool call": (
        [{"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "\udfff"}}]}],
        "auto",
        {},
        "messages[0] holds text",
    ),
    "model a number": (USER, 5, {}, "'model' must be a string"),
    "model a list": (USER, ["auto"], {}, "'model' must be a string"),
    "unknown model": (USER, "gpt-9", {}, "unknown model 'gpt-9'"),
    "metadata a string": (USER, "auto", {"metadata": "x"}, "'metadata' must be an object, not str"),
    "unknown task hint": (USER, "auto", {"metadata": {"biorouter_task": "astrology"}}, "unknown task 'astrology'"),
    "task hint a number": (USER, "auto", {"metadata": {"biorouter_task": 5}}, "biorouter_task must be a task name"),
    "max_tokens negative": (USER, "auto", {"max_tokens": -1}, "max_tokens must be a non-negative integer"),
    "max_tokens a string": (USER, "auto", {"max_tokens": "ten"}, "max_tokens must be"),
    "1 MB prompt": ([{"role": "user", "content": "a " * 500_000}], "auto", {}, "shorten the prompt"),
}


@pytest.mark.parametrize(("messages", "model", "extra", "words"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_to_aroute_and_acompletion_is_a_request_error(
    engine: BioRouter, messages: Any, model: Any, extra: dict[str, Any], words: str
) -> None:
    with pytest.raises(RequestError, match=re.escape(words)):
        await engine.acompletion(messages, model, **extra)  # refused before any upstream is called
    metadata = extra.get("metadata")
    task = metadata.get("biorouter_task") if isinstance(metadata, dict) else None
    with pytest.raises(RequestError, match=re.escape(words)):
        await engine.aroute(messages, model, task=task, request=extra)


async def test_a_task_hint_that_is_not_a_string_is_a_request_error_in_aroute(engine: BioRouter) -> None:
    with pytest.raises(RequestError, match="must be a task name"):
        await engine.aroute(USER, task=5)  # type: ignore[arg-type]


class _FailingEngine:
    """Stands in for ``BioRouter`` inside the hook: ``prepare`` raises what the test gives it."""

    state = None  # the configuration snapshot the hook reads first

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def prepare(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (RequestError("messages[0] needs a 'role'"), 400, "biorouter: messages[0] needs a 'role'"),
        (
            TypeError("'NoneType' object is not subscriptable"),
            500,
            "biorouter internal error (TypeError) on request r-1",
        ),
    ],
    ids=["bad input", "a bug of ours"],
)
async def test_the_hook_answers_bad_input_400_and_labels_its_own_bugs_500(
    monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, words: str
) -> None:
    from fastapi import HTTPException

    from biorouter.proxy.hook import BiorouterProxyHook

    hook = BiorouterProxyHook(warmup=False)

    async def engine() -> Any:
        return _FailingEngine(error)

    monkeypatch.setattr(hook, "engine", engine)
    data = {"model": "auto", "messages": USER, "litellm_call_id": "r-1"}
    with pytest.raises(HTTPException) as raised:
        await hook.async_pre_call_hook(None, None, data, "acompletion")
    assert raised.value.status_code == status
    assert words in str(raised.value.detail)
    assert "NoneType" not in str(raised.value.detail)  # the internals stay in the log, not in the answer
