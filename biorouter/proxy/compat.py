"""Work-arounds for the LiteLLM release biorouter pins (``litellm[proxy]==1.106.2``), each with its reason.

**A rejected key answers 500 instead of 401 when there is no database.** The proxy runs without
LiteLLM's database (no ``DATABASE_URL``: the master key only), so the ``prisma`` client is not
installed. LiteLLM's authentication error handler still asks ``PrismaDBExceptionHandler`` whether
the failure came from the database, and each of those checks starts with ``import prisma``: the
``ModuleNotFoundError`` turns every missing or wrong key into an HTTP 500 with a traceback. The
request is refused either way (it fails closed), but a client told "server error" retries instead
of fixing its key. Without ``prisma`` there is no database that could have failed, so the checks
answer "not a database error" and LiteLLM returns its own 401.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["patch_auth_errors_without_prisma"]

logger = logging.getLogger("biorouter.proxy")


def patch_auth_errors_without_prisma() -> bool:
    """Make the database checks of LiteLLM's error handler answer False when ``prisma`` is absent."""
    if importlib.util.find_spec("prisma") is not None:
        return False  # a database is possible: LiteLLM's own checks apply unchanged
    try:
        from litellm.proxy.db.exception_handler import PrismaDBExceptionHandler
    except ImportError:
        return False
    patched = 0
    for name, value in list(vars(PrismaDBExceptionHandler).items()):
        if name.startswith("is_") and isinstance(value, staticmethod):
            setattr(PrismaDBExceptionHandler, name, staticmethod(_no_database(value.__func__)))
            patched += 1
    if patched:
        logger.debug("biorouter: %d LiteLLM database checks answer False without prisma", patched)
    return patched > 0


def _no_database(check: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(check)
    def without_prisma(*args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except ModuleNotFoundError as e:
            if (e.name or "").split(".")[0] != "prisma":
                raise
            return False

    return without_prisma
