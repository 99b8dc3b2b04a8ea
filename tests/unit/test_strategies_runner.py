"""Answer checks, votes, and the race/ensemble/cascade runner over fake calls with set latencies and faults.

The runner is handed a ``call(group, messages)`` coroutine; here it is a fake with a latency, a
canned answer or an error per group, so the rules are proven without any server. The same
runner over real stand-ins is proven in ``tests/integration/test_strategies_inprocess.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from biorouter.routing.answer_checks import failed_check, normalise, parse_judge_pick, vote, wants_json
from biorouter.routing.plans import StrategyPlan
from biorouter.serving.orchestrate import StrategyFailed, answer_text, run_plan

ALL_CHECKS = ("empty", "refusal", "invalid_json", "low_confidence")


# -- checks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("I can't help with that.", "refusal"),
        ("I'm sorry, but I cannot assist with this request.", "refusal"),
        ("Sorry, but we are unable to provide that", "refusal"),
        ("Answer: 4. Confidence: 0.2", "low_confidence"),
        ("Answer: 4 (confidence: 30%)", "low_confidence"),
        ("Answer: 4. Confidence: 0.9", None),
        ("The function can't help being slow: it is O(n^2).", None),  # not an opening refusal
        ("Here is the fix: use a set.", None),
    ],
)
def test_checks_name_what_is_wrong(text: str, expected: str | None) -> None:
    found = failed_check(text, checks=ALL_CHECKS, min_confidence=0.5)
    assert (found.split(":")[0] if found else None) == expected


def test_invalid_json_fails_only_when_json_was_asked() -> None:
    assert failed_check("not json", checks=("invalid_json",), json_asked=False) is None
    assert failed_check("not json", checks=("invalid_json",), json_asked=True) == (
        "invalid_json: JSON was asked and the answer does not parse"
    )
    assert failed_check('```json\n{"a": 1}\n```', checks=("invalid_json",), json_asked=True) is None


def test_a_check_the_profile_did_not_list_is_not_applied() -> None:
    assert failed_check("", checks=("refusal",)) is None


@pytest.mark.parametrize(
    ("validator", "text", "ok"),
    [
        ("json", '{"x": [1, 2]}', True),
        ("json", "{x: 1}", False),
        ("non_empty", " ", False),
        ("python_syntax", "```python\ndef f(x):\n    return x + 1\n```", True),
        ("python_syntax", "```python\ndef f(x) return x\n```", False),
        ("python_syntax", "x = [1, 2", False),
    ],
)
def test_builtin_validators(validator: str, text: str, ok: bool) -> None:
    found = failed_check(text, checks=(), validators=(validator,))
    assert (found is None) == ok
    if not ok:
        assert str(found).startswith(f"{validator}:")


def test_wants_json_reads_response_format() -> None:
    assert wants_json({"response_format": {"type": "json_object"}})
    assert wants_json({"response_format": {"type": "json_schema", "json_schema": {}}})
    assert not wants_json({"response_format": {"type": "text"}})
    assert not wants_json({})


# -- votes ---------------------------------------------------------------------------------------------


def test_normalisation_ignores_case_spaces_and_punctuation() -> None:
    assert normalise("  The answer is 42. ") == normalise("the ANSWER is 42") == "the answer is 42"


def test_exact_vote_takes_the_majority() -> None:
    assert vote(["B", "A", "A"], "exact") == (1, "exact: 2 of 3 answers agree")


def test_normalised_vote_groups_answers_that_differ_in_form_only() -> None:
    index, why = vote(["Yes.", "no", "YES"], "normalised")
    assert index == 0
    assert why == "normalised: 2 of 3 answers agree"


def test_exact_vote_does_not_merge_answers_that_differ_in_form() -> None:
    index, why = vote(["Yes.", "no", "YES"], "exact")
    assert index == 0  # three different answers: the first group's wins
    assert why == "exact: no two answers agree; the first group's answer wins the tie"


def test_a_tie_between_groups_goes_to_the_answer_listed_first() -> None:
    assert vote(["b", "a", "a", "b"], "exact") == (0, "exact: 2 of 4 answers agree; tie broken by plan order")


def test_json_field_vote_takes_the_majority_per_field() -> None:
    answers = ['{"gene": "TP53", "pathogenic": true}', '{"gene": "TP53", "pathogenic": false}', "not json at all"]
    answers.append('```json\n{"gene": "TP53", "pathogenic": false}\n```')
    index, why = vote(answers, "json_fields")
    assert index == 1  # agrees on both fields (pathogenic: false is 2 of 3); the first such answer
    assert why == "json_fields: agrees with the majority on 2 of 2 field(s)"


def test_json_field_vote_without_any_json_compares_text() -> None:
    assert vote(["same", "other", "Same"], "json_fields") == (0, "normalised: 2 of 3 answers agree")


def test_judge_pick_is_parsed_and_bounded() -> None:
    assert parse_judge_pick("Answer 2 is best", 3) == 1
    assert parse_judge_pick("2", 2) == 1
    assert parse_judge_pick("7", 3) is None
    assert parse_judge_pick("the second one", 3) is None


# -- the runner ------------------------------------------------------------------------------------------


@dataclass
class FakeMessage:
    content: str | None


@dataclass
class FakeChoice:
    message: FakeMessage


@dataclass
class FakeResponse:
    group: str
    choices: list[FakeChoice]
    _hidden_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Upstream:
    """Per group: seconds to answer, the answer, or an error; records calls and cancellations."""

    latency: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    called: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    judge_prompts: list[Any] = field(default_factory=list)

    async def __call__(self, group: str, messages: Any) -> FakeResponse:
        self.called.append(group)
        if messages is not None:
            self.judge_prompts.append(messages)
        try:
            await asyncio.sleep(self.latency.get(group, 0.0))
        except asyncio.CancelledError:
            self.cancelled.append(group)
            raise
        if group in self.failing:
            raise ConnectionError(f"{group} is down")
        text = self.answers.get(group, f"[{group}] fine")
        return FakeResponse(group, [FakeChoice(FakeMessage(text))], {"response_cost": 0.001 if "cloud" in group else 0})


def cost(response: Any) -> float:
    return float(response._hidden_params.get("response_cost", 0.0))


def plan(kind: str, *groups: str, **extra: Any) -> StrategyPlan:
    return StrategyPlan(kind=kind, groups=groups, checks=("empty", "refusal", "invalid_json"), **extra)


async def test_race_returns_the_fastest_answer_and_cancels_the_others() -> None:
    upstream = Upstream(latency={"slow": 5.0, "fast": 0.01, "slower": 5.0})
    response, outcome = await run_plan(plan("race", "slow", "fast", "slower"), upstream, cost_of=cost)
    assert response.group == "fast"
    assert outcome.winner == "fast"
    assert outcome.why.startswith("first good answer")
    assert sorted(upstream.cancelled) == ["slow", "slower"]
    assert {c.group: c.outcome for c in outcome.calls} == {"slow": "cancelled", "fast": "good", "slower": "cancelled"}
    assert outcome.seconds < 1.0


async def test_race_never_takes_a_bad_or_failed_answer_as_the_winner() -> None:
    upstream = Upstream(latency={"empty": 0.0, "down": 0.0, "good": 0.05}, answers={"empty": ""}, failing={"down"})
    response, outcome = await run_plan(plan("race", "empty", "down", "good"), upstream, cost_of=cost)
    assert response.group == "good"
    assert {c.group: c.outcome for c in outcome.calls} == {"empty": "bad", "down": "error", "good": "good"}


async def test_race_without_a_good_answer_fails_naming_every_call() -> None:
    upstream = Upstream(answers={"a": "I cannot help with that."}, failing={"b"})
    with pytest.raises(StrategyFailed, match=r"race strategy found no good answer \(a: bad \(refusal.*b: error"):
        await run_plan(plan("race", "a", "b"), upstream, cost_of=cost)


async def test_ensemble_votes_over_the_good_answers() -> None:
    upstream = Upstream(answers={"a": "The answer is 4", "b": "the answer is 4.", "c": "5"})
    response, outcome = await run_plan(plan("ensemble", "c", "a", "b", vote="normalised"), upstream, cost_of=cost)
    assert response.group == "a"  # the majority's first member in plan order
    assert outcome.why == "normalised: 2 of 3 answers agree"
    assert sorted(upstream.called) == ["a", "b", "c"]


async def test_ensemble_tie_goes_to_the_first_group_of_the_plan() -> None:
    upstream = Upstream(answers={"a": "yes", "b": "no"})
    response, outcome = await run_plan(plan("ensemble", "b", "a", vote="exact"), upstream, cost_of=cost)
    assert response.group == "b"
    assert outcome.why == "exact: no two answers agree; the first group's answer wins the tie"


async def test_ensemble_leaves_failed_and_bad_answers_out_of_the_vote() -> None:
    upstream = Upstream(answers={"a": "", "c": "42"}, failing={"b"})
    response, outcome = await run_plan(plan("ensemble", "a", "b", "c", vote="exact"), upstream, cost_of=cost)
    assert response.group == "c"
    assert outcome.why == "the only good answer"


async def test_ensemble_judge_picks_the_answer_and_its_call_is_recorded() -> None:
    upstream = Upstream(answers={"a": "short", "b": "long and careful", "cloud-judge": "Answer 2"})
    chosen = plan("ensemble", "a", "b", vote="judge", judge="cloud-judge")
    response, outcome = await run_plan(chosen, upstream, cost_of=cost, question="explain X")
    assert response.group == "b"
    assert outcome.why == "judge 'cloud-judge' picked answer 2 of 2"
    assert [c.role for c in outcome.calls] == ["answer", "answer", "judge"]
    assert outcome.cost_usd == pytest.approx(0.001)  # only the (cloud) judge costs here
    prompt = upstream.judge_prompts[0][-1]["content"]
    assert "explain X" in prompt
    assert "Answer 2:\nlong and careful" in prompt


async def test_a_judge_that_names_no_candidate_falls_back_to_the_vote() -> None:
    upstream = Upstream(answers={"a": "x", "b": "y", "j": "both are fine"})
    _, outcome = await run_plan(plan("ensemble", "a", "b", vote="judge", judge="j"), upstream, cost_of=cost)
    assert outcome.winner == "a"
    assert outcome.why.startswith("judge 'j' named no candidate: normalised: no two answers agree")


async def test_cascade_stops_at_the_first_answer_that_passes() -> None:
    upstream = Upstream()
    response, outcome = await run_plan(plan("cascade", "cheap", "cloud"), upstream, cost_of=cost)
    assert response.group == "cheap"
    assert upstream.called == ["cheap"]
    assert [c.outcome for c in outcome.calls] == ["good", "not_called"]
    assert outcome.why == "first group passed the checks"


@pytest.mark.parametrize(
    ("cheap", "json_asked", "reason"),
    [
        ("", False, "empty"),
        ("I won't do that", False, "refusal"),
        ("plain text", True, "invalid_json"),
    ],
)
async def test_cascade_escalates_exactly_on_a_failed_check(cheap: str, json_asked: bool, reason: str) -> None:
    upstream = Upstream(answers={"cheap": cheap, "mid": '{"ok": true}'})
    response, outcome = await run_plan(
        plan("cascade", "cheap", "mid", "cloud"), upstream, cost_of=cost, json_asked=json_asked
    )
    assert response.group == "mid"
    assert upstream.called == ["cheap", "mid"]  # stops at the first pass: the last group is never called
    assert outcome.calls[0].detail.startswith(f"{reason}:")
    assert outcome.why == "escalated 1 time(s); passed the checks"


async def test_cascade_escalates_past_an_error_and_a_named_validator() -> None:
    upstream = Upstream(answers={"b": "```python\ndef f(:\n```", "cloud": "```python\ndef f():\n    pass\n```"})
    upstream.failing.add("a")
    chosen = plan("cascade", "a", "b", "cloud", validators=("python_syntax",))
    response, outcome = await run_plan(chosen, upstream, cost_of=cost)
    assert response.group == "cloud"
    assert [c.outcome for c in outcome.calls] == ["error", "bad", "good"]
    assert outcome.calls[1].detail.startswith("python_syntax: code block 1 does not parse")


async def test_cascade_on_low_confidence_uses_the_plans_threshold() -> None:
    upstream = Upstream(answers={"a": "4 (confidence: 0.6)", "b": "4 (confidence: 0.95)"})
    checks = {"checks": ("low_confidence",), "min_confidence": 0.8}
    chosen = StrategyPlan(kind="cascade", groups=("a", "b"), **checks)
    response, _ = await run_plan(chosen, upstream, cost_of=cost)
    assert response.group == "b"


async def test_cascade_where_every_group_fails_raises_with_the_outcome() -> None:
    upstream = Upstream(answers={"a": "", "b": ""})
    with pytest.raises(StrategyFailed) as caught:
        await run_plan(plan("cascade", "a", "b"), upstream, cost_of=cost)
    assert [c.outcome for c in caught.value.outcome.calls] == ["bad", "bad"]
    assert caught.value.outcome.winner is None


def test_answer_text_of_an_odd_response_is_empty() -> None:
    assert answer_text(object()) == ""
