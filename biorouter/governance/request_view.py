"""The part of a chat request that says what the user wants: the text the classifier judges.

Requests arrive in every OpenAI shape: plain string content, lists of content parts (text,
images, audio), tool calls and tool results, system prompts. The user's intent is in the last
user turn; earlier turns and tool output are context, not intent. Images carry no text we can
judge, so they count only as a note.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from biorouter.errors import RequestError, described, quoted_label

# A lone UTF-16 surrogate: a Python str may hold one (JSON "\ud800" parsed leniently), but it has
# no UTF-8 encoding, so no upstream can be sent it.
_SURROGATE = re.compile("[\ud800-\udfff]")

__all__ = ["RequestView", "check_request", "request_messages", "view_request"]


class RequestView(BaseModel):
    """What biorouter reads from a request; never stored or logged whole (see ``text_sha256``)."""

    model_config = ConfigDict(frozen=True)

    text: str  # last user turn's text, the classifier's input
    texts: tuple[str, ...] = ()  # every text the request carries, for the sensitivity detector
    message_count: int
    has_images: bool = False
    has_tool_turns: bool = False
    # Where the first text that is not valid Unicode sits (a lone UTF-16 surrogate such as
    # "\ud800", e.g. "messages[2]"); None when every text can be encoded as UTF-8.
    invalid_text_at: str | None = None

    @property
    def text_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "replace")).hexdigest()


def _content_text(content: Any) -> tuple[str, bool]:
    """Text of one message's content and whether it held an image."""
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, False
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts: list[str] = []
        image = False
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                kind = part.get("type")
                if kind in (None, "text", "input_text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind in ("image_url", "input_image", "image"):
                    image = True
        return "\n".join(t for t in texts if t), image
    raise RequestError(f"message content must be a string or a list of content parts, not {type(content).__name__}")


def _tool_call_texts(message: Mapping[str, Any]) -> list[str]:
    """Arguments the model passed to tools: they often quote the user's data."""
    texts = []
    raw = message.get("tool_calls")
    # A malformed list (one call object, a string, true) is read as far as it goes, never trusted to be a list.
    if isinstance(raw, Mapping):
        calls: list[Any] = [raw]
    elif isinstance(raw, Sequence) and not isinstance(raw, (str, bytes, bytearray)):
        calls = list(raw)
    else:
        calls = []
    if isinstance(message.get("function_call"), Mapping):
        calls.append({"function": message["function_call"]})
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
            texts.append(function["arguments"])
    return texts


def view_request(messages: Any) -> RequestView:
    """Extract the text to judge from OpenAI-style ``messages``.

    Raises RequestError for shapes no upstream would accept either (not a list, a message that is
    not an object, content that is neither text nor parts); a conversation with no user text yields
    empty text, which the policy routes to the profile's default route. Lenient on purpose where
    the upstream is the better judge (unknown or missing roles, extra fields): it is also how the
    guard reads requests nobody decided on. :func:`check_request` adds the chat boundary's checks.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise RequestError("'messages' must be a list of message objects")
    last_user = ""
    fallback = ""
    has_images = False
    has_tools = False
    invalid_at: str | None = None
    texts: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise RequestError(f"messages[{index}] must be an object with 'role' and 'content'")
        role = message.get("role")
        try:
            text, image = _content_text(message.get("content"))
        except RequestError as e:
            raise RequestError(f"messages[{index}]: {e}") from e
        has_images = has_images or image
        found = [t for t in (text, message.get("name")) if isinstance(t, str) and t]
        found.extend(_tool_call_texts(message))
        if invalid_at is None and any(_SURROGATE.search(t) for t in found):
            invalid_at = f"messages[{index}]"
        texts.extend(found)
        if role == "tool" or message.get("tool_calls") or role == "function":
            has_tools = True
            continue
        if role == "user":
            last_user = text
        elif text and role in ("system", "developer"):
            fallback = text
    return RequestView(
        text=(last_user or fallback).strip(),
        texts=tuple(texts),
        message_count=len(messages),
        has_images=has_images,
        has_tool_turns=has_tools,
        invalid_text_at=invalid_at,
    )


# The content part types LiteLLM 1.106 accepts in a user turn (litellm.types.llms.openai); any other
# type makes it fail the call with a 500 of its own, so biorouter refuses it first with a 400.
USER_PART_TYPES = frozenset(
    {"text", "image_url", "input_audio", "audio_url", "document", "guarded_text", "grounding_source", "query",
     "video_url", "file"}
)  # fmt: skip


def _check_message(where: str, message: Any) -> None:
    """The OpenAI message shape LiteLLM relies on when it builds the upstream call.

    Looser shapes are read by :func:`view_request` (the guard needs that), but sent on they make
    LiteLLM's own code fail with a 500 (a KeyError on a missing role, iterating ``tool_calls: true``)
    after biorouter decided; refused here they are a 400 that names the field.
    """
    if not isinstance(message, Mapping):
        return  # view_request has refused it already
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise RequestError(f"{where} needs a 'role' (a string such as 'user'), not {described(role)}")
    if role != "assistant" and message.get("content") is None:  # only a tool-calling assistant turn may omit it
        raise RequestError(f"{where} (role {quoted_label(role)}) has no 'content'")
    content = message.get("content")
    if role == "user" and isinstance(content, list):
        for number, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind not in USER_PART_TYPES:
                raise RequestError(
                    f"{where}.content[{number}] must be a content part object with a 'type' such as 'text' or "
                    f"'image_url', not {described(part)}"
                )
    calls = message.get("tool_calls")
    if calls is not None and (not isinstance(calls, list) or not all(isinstance(c, Mapping) for c in calls)):
        raise RequestError(f"{where}.tool_calls must be a list of tool call objects")
    function_call = message.get("function_call")
    if function_call is not None and not isinstance(function_call, Mapping):
        raise RequestError(f"{where}.function_call must be an object")


def check_request(view: RequestView, model: object, request: Mapping[str, Any], task: object = None) -> None:
    """Refuse, before any work, a chat request biorouter could read but no upstream would accept.

    Called where a request enters the decision path (``BioRouter`` for the proxy hook and the
    Python API alike), so a malformed field becomes a RequestError (HTTP 400) that names it,
    instead of an upstream's error after retries and fallbacks, or a TypeError deep inside.
    ``task`` is the client's task hint as given (``metadata.biorouter_task`` or ``task=``). The
    message shape checks read ``request["messages"]``, present for chat completions only: the
    items of other endpoints (Responses API input, a wrapped ``prompt``) have shapes of their own.
    """
    if view.message_count == 0:
        raise RequestError("'messages' is empty: a chat request needs at least one message")
    if view.invalid_text_at is not None:
        raise RequestError(
            f"{view.invalid_text_at} holds text that is not valid Unicode (a lone surrogate such as \\ud800): "
            "it cannot be encoded as UTF-8 for any upstream"
        )
    if not isinstance(model, str):
        raise RequestError(f"'model' must be a string ('auto' or a deployment group), not {type(model).__name__}")
    messages = request.get("messages")
    if isinstance(messages, Sequence):
        for index, message in enumerate(messages):
            _check_message(f"messages[{index}]", message)
    tools = request.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools)):
        raise RequestError("'tools' must be a list of tool objects")
    for key in ("metadata", "litellm_metadata"):
        value = request.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise RequestError(f"'{key}' must be an object, not {type(value).__name__}")
    if task is not None and (not isinstance(task, str) or not task):
        raise RequestError(f"metadata.biorouter_task must be a task name (a string), not {described(task)}")


def request_messages(data: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """A request's text as chat messages, whatever its endpoint.

    ``messages`` (chat) as sent; a ``prompt`` (text completion) or ``input`` (embeddings, the
    Responses API) wrapped as a user turn, or taken as message items when it already is a list of
    them. None when the request carries no text.
    """
    messages = data.get("messages")
    if isinstance(messages, list):
        return messages
    for key in ("prompt", "input"):
        value = data.get(key)
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
        if isinstance(value, list) and value:
            if all(isinstance(v, Mapping) for v in value):  # Responses API input items
                return [dict(v) for v in value]
            return [{"role": "user", "content": "\n".join(v for v in value if isinstance(v, str))}]
    return None
