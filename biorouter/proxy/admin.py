"""biorouter's own endpoints on the LiteLLM proxy: session status, metrics, and an admin-only profile switch.

    GET  /biorouter/status    any valid key: the active profile, how it was chosen, session counters
    GET  /biorouter/metrics   any valid key: biorouter's Prometheus metrics (docs/operations.md)
    POST /biorouter/profile   proxy admin (the master key) only: {"profile": "...", "reason": "..."}
    POST /biorouter/reload    proxy admin only: re-read profiles/ and utterances/, validate, swap
                              ({"reason": "..."} optional); 400 lists every problem, the last good
                              configuration serves on (SIGHUP to the proxy process does the same)

All use LiteLLM's own key check (``user_api_key_auth``), so they need the same ``Authorization:
Bearer`` header as the chat endpoints. A switch is logged with who asked and why, and it is the only
way the active profile changes while the proxy runs. ``biorouter status`` and ``biorouter switch``
call these endpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pydantic import BaseModel, Field

from biorouter import metrics
from biorouter.errors import ConfigError
from biorouter.serving.engine import BioRouter
from biorouter.serving.reload import RoutingState
from biorouter.serving.session import SessionSummary

__all__ = [
    "METRICS_PATH",
    "RELOAD_PATH",
    "STATUS_PATH",
    "SWITCH_PATH",
    "ReloadRequest",
    "SwitchRequest",
    "register_routes",
]

logger = logging.getLogger("biorouter.proxy")

STATUS_PATH = "/biorouter/status"
METRICS_PATH = "/biorouter/metrics"
SWITCH_PATH = "/biorouter/profile"
RELOAD_PATH = "/biorouter/reload"


class SwitchRequest(BaseModel):
    profile: str = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=500)


class ReloadRequest(BaseModel):
    reason: str = Field(default="admin reload", min_length=1, max_length=500)


class Reload(Protocol):
    def __call__(self, *, reason: str, by: str) -> Awaitable[RoutingState]: ...


class Switch(Protocol):
    def __call__(self, name: str, *, reason: str, by: str) -> Awaitable[BioRouter]: ...


SessionView = Callable[[], Awaitable[tuple[SessionSummary, list[dict[str, Any]] | None]]]


def status_payload(
    engine: BioRouter, summary: SessionSummary | None = None, workers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The status document; ``summary`` and ``workers`` are the sums over several proxy workers, if any."""
    summary = summary or engine.session.summary()
    fits = engine.selection.fits if engine.selection is not None else ()
    state = engine.state
    return {
        "profile": state.profile.name,
        "session": summary.model_dump(mode="json"),
        **({"workers": workers} if workers is not None else {}),
        "profiles": [fit.model_dump(mode="json") for fit in fits],
        "generation": state.generation,
        "loaded_at": state.loaded_at.isoformat(),
        "last_reload": engine.last_reload.model_dump(mode="json") if engine.last_reload is not None else None,
        "degraded": [
            *(["ledger:unavailable"] if engine.ledger.degraded else []),
            *(["classifier:lexical"] if state.classifier.degraded else []),
        ],
    }


def register_routes(
    app: Any,
    engine: Callable[[], Awaitable[BioRouter]],
    *,
    reload: Reload | None = None,
    switch: Switch | None = None,
    session: SessionView | None = None,
) -> None:
    """Add the routes to the proxy's FastAPI ``app``; ``engine`` returns the hook's (lazily built) engine.

    ``reload``, ``switch`` and ``session`` (the hook's) reach every proxy worker; without them the
    engine's own methods serve this process alone.
    """

    async def payload() -> dict[str, Any]:
        current = await engine()
        if session is None:
            return status_payload(current)
        summary, workers = await session()
        return status_payload(current, summary, workers)

    from fastapi import Depends, HTTPException, Response
    from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth
    from litellm.proxy.auth.user_api_key_auth import user_api_key_auth

    async def biorouter_status(user: UserAPIKeyAuth = Depends(user_api_key_auth)) -> dict[str, Any]:  # noqa: B008
        return await payload()

    async def biorouter_switch_profile(
        body: SwitchRequest,
        user: UserAPIKeyAuth = Depends(user_api_key_auth),  # noqa: B008
    ) -> dict[str, Any]:
        if user.user_role != LitellmUserRoles.PROXY_ADMIN:
            raise HTTPException(status_code=403, detail="biorouter: switching the profile needs the proxy admin key")
        who = f"proxy admin ({user.key_alias or 'master key'})"
        try:  # validates like a reload: off the event loop
            if switch is not None:
                await switch(body.profile, reason=body.reason, by=who)
            else:
                current = await engine()
                await asyncio.to_thread(current.switch_profile, body.profile, reason=body.reason, by=who)
        except ConfigError as e:
            problems = "\n".join(f"  {p}" for p in e.problems)
            serving = (await engine()).profile.name
            detail = f"biorouter: switch to '{body.profile}' refused; profile '{serving}' serves on:\n{problems}"
            raise HTTPException(status_code=400, detail=detail) from e
        return await payload()

    async def biorouter_reload(
        body: ReloadRequest | None = None,
        user: UserAPIKeyAuth = Depends(user_api_key_auth),  # noqa: B008
    ) -> dict[str, Any]:
        if user.user_role != LitellmUserRoles.PROXY_ADMIN:
            raise HTTPException(status_code=403, detail="biorouter: reloading needs the proxy admin key")
        who = f"proxy admin ({user.key_alias or 'master key'})"
        reason = (body or ReloadRequest()).reason
        try:
            if reload is not None:
                await reload(reason=reason, by=who)
            else:
                await (await engine()).reload(reason=reason, by=who)
        except ConfigError as e:
            problems = "\n".join(f"  {p}" for p in e.problems)
            detail = f"biorouter: reload rejected; the last good configuration serves on:\n{problems}"
            raise HTTPException(status_code=400, detail=detail) from e
        return await payload()

    async def biorouter_metrics(user: UserAPIKeyAuth = Depends(user_api_key_auth)) -> Response:  # noqa: B008
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    app.add_api_route(STATUS_PATH, biorouter_status, methods=["GET"], tags=["biorouter"])
    app.add_api_route(METRICS_PATH, biorouter_metrics, methods=["GET"], tags=["biorouter"])
    app.add_api_route(SWITCH_PATH, biorouter_switch_profile, methods=["POST"], tags=["biorouter"])
    app.add_api_route(RELOAD_PATH, biorouter_reload, methods=["POST"], tags=["biorouter"])
    logger.info(
        "biorouter endpoints: GET %s, GET %s, POST %s and POST %s (admin)",
        STATUS_PATH,
        METRICS_PATH,
        SWITCH_PATH,
        RELOAD_PATH,
    )
