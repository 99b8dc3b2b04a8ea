"""Test and demo helpers: OpenAI-compatible stand-in upstreams (not models) and their runners.

Names are imported lazily on first access so that ``import biorouter.testing`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biorouter.testing.standin import StandIn, StandInFleet, free_port
    from biorouter.testing.upstream import Fault, build_app

__all__ = ["Fault", "StandIn", "StandInFleet", "build_app", "free_port"]

_HOMES = {
    "Fault": "biorouter.testing.upstream",
    "build_app": "biorouter.testing.upstream",
    "StandIn": "biorouter.testing.standin",
    "StandInFleet": "biorouter.testing.standin",
    "free_port": "biorouter.testing.standin",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
