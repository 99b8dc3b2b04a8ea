"""The part of a chat request that says what the user wants: the text the classifier judges.

Requests arrive in every OpenAI shape: plain string content, lists of content parts (text,
images, audio), tool calls and tool results, system prompts. The user's intent is in the last
user turn; earlier turns and tool output are context, not intent. Images carry no text we can
judge, so they count only as a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from biorouter.errors import RequestError

__all__ = ["RequestView", "request_messages", "view_request"]


class RequestView(BaseModel):
    """What biorouter reads from a request; never stored or logged whole (see ``text_sha256``)."""

    model_config = ConfigDict(frozen=True)

    text: str  # last user turn's text, the classifier's input
    texts: tuple[str, ...] = ()  # every text the request carries, for the sensitivity detector
    message_count: int
    has_images: bool = False
    has_tool_turns: bool = False

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
    calls = message.get("tool_calls") or []
    if isinstance(message.get("function_call"), Mapping):
        calls = [*calls, {"function": message["function_call"]}]
    for call in calls if isinstance(calls, Sequence) else []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
            texts.append(function["arguments"])
    return texts


def view_request(messages: Any) -> RequestView:
    """Extract the text to judge from OpenAI-style ``messages``.

    Raises RequestError for shapes no upstream would accept either (not a list, a message that is
    not an object); an empty conversation or one with no user text yields empty text, which the
    policy routes to the profile's default route.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        raise RequestError("'messages' must be a list of message objects")
    last_user = ""
    fallback = ""
    has_images = False
    has_tools = False
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
        texts.extend(t for t in (text, message.get("name")) if isinstance(t, str) and t)
        texts.extend(_tool_call_texts(message))
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
    )


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
