"""``view_request``: which text of an OpenAI-style conversation the classifier judges."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from biorouter.errors import RequestError
from biorouter.governance.request_view import view_request

IMAGE = {"type": "image_url", "image_url": {"url": "https://example.org/gel-electrophoresis.png"}}


def test_string_content_of_the_user_turn_is_the_text() -> None:
    view = view_request([{"role": "user", "content": "  what does BRCA1 do?\n"}])
    assert view.text == "what does BRCA1 do?"
    assert view.message_count == 1
    assert view.has_images is False
    assert view.has_tool_turns is False


def test_last_user_turn_wins_over_earlier_turns_and_the_system_prompt() -> None:
    view = view_request(
        [
            {"role": "system", "content": "You are a helpful bioinformatics assistant."},
            {"role": "user", "content": "write a python function to parse FASTA"},
            {"role": "assistant", "content": "def parse_fasta(path): ..."},
            {"role": "user", "content": "what is a p-value?"},
        ]
    )
    assert view.text == "what is a p-value?"
    assert view.message_count == 4


def test_assistant_text_after_the_last_user_turn_is_not_the_text() -> None:
    view = view_request(
        [
            {"role": "user", "content": "explain linkage disequilibrium"},
            {"role": "assistant", "content": "Sure, here is some Rust code instead."},
        ]
    )
    assert view.text == "explain linkage disequilibrium"


def test_text_parts_of_list_content_are_joined_in_order() -> None:
    view = view_request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare these two"},
                    {"type": "input_text", "text": "sequence alignments"},
                    "plain string part",
                    {"text": "part without a type"},
                ],
            }
        ]
    )
    assert view.text == "compare these two\nsequence alignments\nplain string part\npart without a type"
    assert view.has_images is False


def test_image_parts_set_has_images_and_give_no_text() -> None:
    view = view_request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is on this gel?"},
                    IMAGE,
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            }
        ]
    )
    assert view.text == "what is on this gel?"
    assert view.has_images is True
    assert "example.org" not in view.text
    assert "base64" not in view.text


def test_image_in_an_earlier_turn_still_sets_has_images() -> None:
    view = view_request(
        [
            {"role": "user", "content": [IMAGE]},
            {"role": "assistant", "content": "It shows two bands."},
            {"role": "user", "content": "and what size are they?"},
        ]
    )
    assert view.has_images is True
    assert view.text == "and what size are they?"


def test_unknown_part_types_are_ignored() -> None:
    view = view_request(
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGR"}}, {"type": "text"}]}]
    )
    assert view.text == ""
    assert view.has_images is False


def test_tool_turns_do_not_become_the_text_the_last_user_turn_does() -> None:
    view = view_request(
        [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": "run FastQC on sample_42.fastq"},
            {
                "role": "assistant",
                "content": "calling the quality-control tool now",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "fastqc", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "Per base sequence quality: FAIL"},
            {"role": "function", "name": "legacy", "content": "legacy function output"},
        ]
    )
    assert view.text == "run FastQC on sample_42.fastq"
    assert view.has_tool_turns is True
    assert view.message_count == 5


def test_tool_output_is_not_the_text_even_without_a_user_turn() -> None:
    view = view_request(
        [
            {"role": "system", "content": "Summarise tool results."},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "Quality: FAIL"}]},
        ]
    )
    assert view.text == "Summarise tool results."
    assert view.has_tool_turns is True


@pytest.mark.parametrize("role", ["system", "developer"])
def test_conversation_without_user_text_falls_back_to_the_system_text(role: str) -> None:
    view = view_request([{"role": role, "content": "Classify variants by ACMG criteria."}])
    assert view.text == "Classify variants by ACMG criteria."


def test_user_text_is_preferred_over_a_later_system_message() -> None:
    view = view_request(
        [
            {"role": "user", "content": "plot a volcano plot"},
            {"role": "system", "content": "Answer briefly."},
        ]
    )
    assert view.text == "plot a volcano plot"


def test_empty_conversation_has_empty_text() -> None:
    view = view_request([])
    assert view.text == ""
    assert view.message_count == 0


def test_messages_with_null_or_missing_content_give_empty_text() -> None:
    view = view_request([{"role": "user", "content": None}, {"role": "user"}])
    assert view.text == ""
    assert view.message_count == 2


def test_a_tuple_of_messages_is_accepted() -> None:
    assert view_request(({"role": "user", "content": "hi"},)).text == "hi"


@pytest.mark.parametrize(
    "messages",
    [{"role": "user", "content": "hi"}, "hi", b"hi", None, 42],
    ids=["dict", "str", "bytes", "none", "int"],
)
def test_messages_that_are_not_a_list_are_rejected(messages: Any) -> None:
    with pytest.raises(RequestError, match=r"^'messages' must be a list of message objects$"):
        view_request(messages)


@pytest.mark.parametrize("message", ["hello", None, ["user", "hello"]], ids=["str", "none", "list"])
def test_a_message_that_is_not_an_object_is_rejected_with_its_index(message: Any) -> None:
    with pytest.raises(RequestError) as excinfo:
        view_request([{"role": "user", "content": "fine"}, message])
    assert str(excinfo.value) == "messages[1] must be an object with 'role' and 'content'"


@pytest.mark.parametrize(
    ("content", "kind"),
    [(7, "int"), (1.5, "float"), ({"type": "text", "text": "x"}, "dict"), (b"bytes", "bytes")],
)
def test_content_of_a_bad_type_is_rejected_with_its_index_and_type(content: Any, kind: str) -> None:
    messages = [
        {"role": "system", "content": "ok"},
        {"role": "user", "content": "ok"},
        {"role": "user", "content": content},
    ]
    with pytest.raises(RequestError) as excinfo:
        view_request(messages)
    assert str(excinfo.value) == (
        f"messages[2]: message content must be a string or a list of content parts, not {kind}"
    )
    assert isinstance(excinfo.value.__cause__, RequestError)


def test_text_sha256_is_the_stable_hash_of_the_text_and_does_not_reveal_it() -> None:
    text = "patient 0042 carries a BRCA2 frameshift"
    first = view_request([{"role": "user", "content": text}])
    second = view_request([{"role": "system", "content": "other context"}, {"role": "user", "content": f" {text} "}])
    assert first.text_sha256 == second.text_sha256
    assert first.text_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(first.text_sha256) == 64
    assert text not in first.text_sha256
    assert view_request([{"role": "user", "content": text + "!"}]).text_sha256 != first.text_sha256


def test_text_sha256_survives_text_that_is_not_valid_utf8() -> None:
    view = view_request([{"role": "user", "content": "lone surrogate \ud800 here"}])
    assert len(view.text_sha256) == 64
