"""The ledger a ``ledger.url`` setting names: in memory when empty, redis for ``redis://`` and friends.

Apart from :mod:`~biorouter.costs.ledger` so that the base module never imports the redis ledger built on it.
"""

from __future__ import annotations

from biorouter.costs.ledger import FailMode, Ledger, MemoryLedger
from biorouter.costs.ledger_redis import RedisLedger

__all__ = ["ledger_from_url"]


def ledger_from_url(url: str | None, *, fail_mode: FailMode = "closed") -> Ledger:
    """``None`` or ``""``: a :class:`MemoryLedger`; ``redis://``, ``rediss://``, ``unix://``: a :class:`RedisLedger`."""
    if not url:
        return MemoryLedger()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisLedger(url, fail_mode=fail_mode)
    raise ValueError(f"ledger URL {url!r}: expected redis://HOST:PORT/DB, rediss://..., unix://PATH, or none (memory)")
