"""A LiteLLM 1.106.2 work-around: LLM request bodies its auth step cannot read get a 400, not a 500.

LiteLLM reads the JSON body in its authentication dependency, before any callback (biorouter's
hook included) runs, and its checks there assume an object: a JSON array, number or string as the
body fails in ``pre_db_read_auth_checks`` (``body.get("model")``) with a bare HTTP 500, and a number
as ``tools`` fails in its tool allow-list check, whose error handler fails in turn, so the client's
connection is dropped without an answer. biorouter never sees these requests, so its own checks
(``biorouter.governance.request_view.check_request``) cannot answer them.

LiteLLM already turns a body it cannot parse into a deferred 400: the auth step runs on an empty
body, then raises the parse error. :func:`patch_unreadable_bodies` gives the bodies above the same
treatment, on the LLM API routes only (management endpoints keep LiteLLM's own handling).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

__all__ = ["body_problem", "patch_unreadable_bodies"]

logger = logging.getLogger("biorouter.proxy")

_LLM_ROUTES = ("/chat/completions", "/completions", "/embeddings", "/responses", "/messages")


def body_problem(body: object) -> str | None:
    """What makes ``body`` unreadable for LiteLLM's auth step, or None when it is fine."""
    if not isinstance(body, dict):
        return f"the request body must be a JSON object, not {type(body).__name__}"
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        return "'tools' must be a list of tool objects"
    return None


def patch_unreadable_bodies() -> bool:
    """Wrap LiteLLM's body reader in its auth module; False when this LiteLLM has no such function."""
    try:
        from litellm.proxy._types import ProxyException
        from litellm.proxy.auth import user_api_key_auth as auth
    except ImportError:
        return False
    original = getattr(auth, "_read_request_body_deferring_parse_failure", None)
    route_of = getattr(auth, "get_request_route", None)
    if original is None or route_of is None or getattr(original, "biorouter_patched", False):
        return False

    @functools.wraps(original)
    async def read(request: Any) -> tuple[Any, Any]:
        body, failure = await original(request=request)
        if failure is not None or not str(route_of(request=request)).endswith(_LLM_ROUTES):
            return body, failure
        problem = body_problem(body)
        if problem is None:
            return body, failure
        error = ProxyException(
            message=f"biorouter: {problem}", type="invalid_request_error", param="request_body", code=400
        )
        return {}, error

    read.biorouter_patched = True  # type: ignore[attr-defined]
    auth._read_request_body_deferring_parse_failure = read
    logger.debug("biorouter: LLM request bodies that are not objects get a 400 (see body_shape.py)")
    return True
