"""Test and demo helpers: OpenAI-compatible stand-in upstreams (not models) and their runners, and
fake ``nvidia-smi``/``sinfo``/``squeue`` tools for testing hardware detection on any machine.

Names are imported lazily on first access so that ``import biorouter.testing`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biorouter.testing.hardware import SCENARIOS, FakeGPU, FakeSlurm, fake_path, write_fake_tools
    from biorouter.testing.redis import RedisServer
    from biorouter.testing.standin import StandIn, StandInFleet, free_port
    from biorouter.testing.upstream import Fault, build_app

__all__ = [
    "SCENARIOS",
    "FakeGPU",
    "FakeSlurm",
    "Fault",
    "RedisServer",
    "StandIn",
    "StandInFleet",
    "build_app",
    "fake_path",
    "free_port",
    "write_fake_tools",
]

_HOMES = {
    "Fault": "biorouter.testing.upstream",
    "build_app": "biorouter.testing.upstream",
    "StandIn": "biorouter.testing.standin",
    "StandInFleet": "biorouter.testing.standin",
    "free_port": "biorouter.testing.standin",
    "FakeGPU": "biorouter.testing.hardware",
    "FakeSlurm": "biorouter.testing.hardware",
    "SCENARIOS": "biorouter.testing.hardware",
    "fake_path": "biorouter.testing.hardware",
    "write_fake_tools": "biorouter.testing.hardware",
    "RedisServer": "biorouter.testing.redis",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
