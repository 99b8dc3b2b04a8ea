"""Hypothesis strategies for chat request bodies, well-formed or not, shared by the two fuzzers.

Bodies are JSON-ish: the OpenAI shapes a client may send (string or part-list content, images,
tool calls and results, system prompts), mixed with what a careless client sends instead (numbers
where text belongs, objects where lists belong, unknown roles, missing keys, huge or negative
limits, lone surrogates). Some texts carry a patient or sample identifier from
:data:`SENSITIVE_MARKERS`, so the fuzzers can also check governance: a request whose scanned text
holds one must be decided local-only.

``json_safe=True`` leaves out what JSON cannot carry (lone surrogates, which the proxy's parser
refuses before biorouter sees them, and non-string keys) for bodies sent over HTTP.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["GROUPS", "SENSITIVE_MARKERS", "TASKS", "request_bodies"]

GROUPS = ("deepseek-v3", "t4-bio", "t4-coder", "t4-embeddings", "t4-generalist", "t4-math", "t4-safety")
TASKS = ("biomedical", "code_generation", "data_analysis", "documentation", "math_statistics", "safety")
# Identifiers the development profile's detector must catch (built-in MRN rule, the lab's SMP- pattern).
SENSITIVE_MARKERS = ("SMP-123456", "MRN: 00482913")
_PHRASES = (
    "write a python function that parses a FASTA file",
    "what does the KRAS G12D mutation do?",
    "compute a t-test for these two samples",
    "hello",
    "",
    " ",
)
_TOOL = {"type": "function", "function": {"name": "run_blast", "parameters": {"type": "object", "properties": {}}}}
_ROLES = ("user", "system", "assistant", "tool", "function", "developer")


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``one_of`` with weights (``one_of(a, a, b)`` would count ``a`` once)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def _texts(json_safe: bool) -> st.SearchStrategy[str]:
    fragments = [(2, st.text(max_size=40)), (4, st.sampled_from(_PHRASES)), (2, st.sampled_from(SENSITIVE_MARKERS))]
    if not json_safe:
        fragments.append((1, st.sampled_from(("\ud800", "\udfff", "a\udc80b"))))
    return st.lists(_weighted(*fragments), max_size=4).map(" ".join)


def _scalars(json_safe: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        _texts(json_safe),
    )


def _junk(json_safe: bool) -> st.SearchStrategy[Any]:
    """Any JSON value, a few levels deep."""
    return st.recursive(
        _scalars(json_safe),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=6,
    )


def _parts(json_safe: bool) -> st.SearchStrategy[Any]:
    text = _texts(json_safe)
    image = st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}})
    return st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(("text", "input_text")), "text": text}),
        st.fixed_dictionaries({"text": st.one_of(text, _junk(json_safe))}),
        image,
        text,
        _junk(json_safe),
    )


def _contents(json_safe: bool) -> st.SearchStrategy[Any]:
    return st.one_of(_texts(json_safe), st.none(), st.lists(_parts(json_safe), max_size=4), _junk(json_safe))


def _tool_calls(json_safe: bool) -> st.SearchStrategy[Any]:
    call = st.fixed_dictionaries(
        {
            "id": st.just("call_1"),
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": st.just("run_blast"), "arguments": st.one_of(_texts(json_safe), _junk(json_safe))}
            ),
        }
    )
    return st.one_of(st.lists(call, max_size=2), _junk(json_safe))


def _messages(json_safe: bool) -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {},
        optional={
            "role": st.one_of(st.sampled_from(_ROLES), _junk(json_safe)),
            "content": _contents(json_safe),
            "name": st.one_of(_texts(json_safe), _junk(json_safe)),
            "tool_calls": _tool_calls(json_safe),
            "function_call": st.one_of(
                st.fixed_dictionaries({"name": st.just("f"), "arguments": _texts(json_safe)}), _junk(json_safe)
            ),
            "tool_call_id": st.just("call_1"),
        },
    )
    usual = st.fixed_dictionaries({"role": st.sampled_from(("user", "system")), "content": _texts(json_safe)})
    # Mostly the usual shapes, so most examples reach the classifier and decide(); the rest are odd.
    item = _weighted((6, usual), (3, message), (1, _junk(json_safe)))
    return _weighted((8, st.lists(item, min_size=1, max_size=5)), (1, st.just([])), (1, _junk(json_safe)))


def _metadata(json_safe: bool) -> st.SearchStrategy[Any]:
    hint = st.one_of(st.sampled_from(TASKS), _texts(json_safe), _junk(json_safe))
    return _weighted(
        (4, st.none()),
        (2, st.fixed_dictionaries({}, optional={"biorouter_task": hint, "user_note": _junk(json_safe)})),
        (2, st.fixed_dictionaries({"biorouter_task": st.sampled_from(TASKS)})),
        (1, _junk(json_safe)),
    )


def _limits() -> st.SearchStrategy[Any]:
    odd = st.one_of(
        st.integers(min_value=2**31, max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=5),
    )
    return _weighted((6, st.none()), (3, st.integers(min_value=-10, max_value=200_000)), (1, odd))


def request_bodies(*, json_safe: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Chat request bodies: ``messages`` always drawn, other fields sometimes."""
    model = _weighted(
        (6, st.just("auto")), (2, st.sampled_from(GROUPS)), (1, st.text(max_size=12)), (1, _junk(json_safe))
    )
    return st.fixed_dictionaries(
        {"messages": _messages(json_safe)},
        optional={
            "model": model,
            "metadata": _metadata(json_safe),
            "max_tokens": _limits(),
            "max_completion_tokens": _limits(),
            # Fields biorouter neither reads nor checks stay well-typed: their validation is
            # LiteLLM's and the upstream's (LiteLLM 1.106 fails e.g. a list as temperature itself).
            "temperature": st.floats(allow_nan=False, allow_infinity=False),
            "stream": st.booleans(),
            "tools": st.one_of(st.just([]), st.just([_TOOL]), _junk(json_safe)),
        },
    )
