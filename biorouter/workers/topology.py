"""How many proxy workers share this process's work, where they meet, and what they must share.

``litellm --num_workers N`` sets ``NUM_WORKERS`` in its parent process before starting the workers,
so every worker inherits it. The workers' shared folder is ``BIOROUTER_WORKERS_DIR`` (``biorouter
serve`` sets it under its run directory); when LiteLLM was started directly it is a folder in the
temporary directory named after the user and the workers' parent process, which every sibling
computes alike.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from biorouter.errors import ConfigError, Problem
from biorouter.settings import Settings

__all__ = ["WORKERS_DIR_ENV", "require_shared_ledger", "shared_dir", "worker_count"]

WORKERS_DIR_ENV = "BIOROUTER_WORKERS_DIR"
NUM_WORKERS_ENV = "NUM_WORKERS"  # LiteLLM's own (proxy_cli sets it from --num_workers)


def worker_count() -> int:
    """The number of worker processes serving the proxy this process belongs to (1 when unknown)."""
    value = os.environ.get(NUM_WORKERS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def shared_dir() -> Path:
    """The folder the workers of this proxy share (created on demand by its users)."""
    explicit = os.environ.get(WORKERS_DIR_ENV)
    if explicit:
        return Path(explicit)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"biorouter-workers-{uid}-{os.getppid()}-{_parent_started()}"


def _parent_started() -> str:
    """The parent's start time in clock ticks (Linux), so a reused pid does not reuse a stale folder."""
    try:
        fields = Path(f"/proc/{os.getppid()}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5), counted after the command name
    except (OSError, IndexError):
        return "0"


def require_shared_ledger(settings: Settings, workers: int, *, source: str = "--num_workers") -> None:
    """Refuse several workers over a per-process ledger: each would keep its own budgets.

    A daily budget of $10 with four in-memory ledgers is a budget of $40, silently; so start-up
    stops here and says which setting to give.
    """
    if workers > 1 and settings.ledger.url is None:
        raise ConfigError(
            [
                Problem(
                    "biorouter.yaml",
                    ("ledger", "redis_url"),
                    f"{workers} proxy workers ({source}) need a shared spend ledger, else each worker keeps its own "
                    "budgets: set ledger.redis_url in biorouter.yaml or REDIS_URL (e.g. redis://127.0.0.1:6379/0), "
                    "or run one worker",
                )
            ]
        )
