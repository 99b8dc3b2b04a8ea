"""What the guard reads from a request that reached LiteLLM without biorouter's Decision."""

from __future__ import annotations

from typing import Any

import pytest

from biorouter.governance.guard import LocalOnlyGuard

SENSITIVE = "Summarise the last visit of MRN: 00482913"


@pytest.mark.parametrize(
    ("messages", "request_kwargs"),
    [
        ([{"role": "user", "content": SENSITIVE}], {}),
        (None, {"input": SENSITIVE}),  # embeddings
        (None, {"input": ["fine", SENSITIVE]}),
        (None, {"prompt": SENSITIVE}),  # text completion
        (None, {"input": [{"role": "user", "content": [{"type": "input_text", "text": SENSITIVE}]}]}),  # Responses
    ],
    ids=["chat", "input", "input-list", "prompt", "responses-items"],
)
def test_identifiers_are_found_in_every_request_shape(messages: Any, request_kwargs: dict[str, Any]) -> None:
    guard = LocalOnlyGuard(scan_undecided=True)
    assert guard.local_only_rules(messages, request_kwargs) == ("content:medical_record_number",)


def test_a_request_without_identifiers_or_text_is_not_local_only() -> None:
    guard = LocalOnlyGuard(scan_undecided=True)
    assert guard.local_only_rules([{"role": "user", "content": "reverse a list in python"}], {}) == ()
    assert guard.local_only_rules(None, {"model": "t4-coder"}) == ()


def test_in_process_the_guard_trusts_only_decisions() -> None:
    assert LocalOnlyGuard().local_only_rules(None, {"input": SENSITIVE}) == ()
    decided = {"metadata": {"biorouter": {"local_only": True, "local_only_rules": ["route:biomedical"]}}}
    assert LocalOnlyGuard().local_only_rules(None, decided) == ("route:biomedical",)
