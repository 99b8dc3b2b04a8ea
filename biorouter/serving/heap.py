"""Freeze the proxy's start-up heap, so the garbage collector stops walking it under load.

Why: after warm-up a proxy with biorouter holds about a million long-lived objects (LiteLLM's
own, the classifier's index and heads, the NER model). CPython's full collection walks every one
of them: under load that came once every few hundred requests and took 0.3-0.4 s of the event
loop each time (``bench/proxy_overhead.py``), about 0.5-0.7 ms a request on average and a stall of that
length for every request in flight. ``gc.freeze()`` moves what exists after warm-up into a
permanent generation the collector skips; objects created afterwards are collected as before.
Reference counting still frees frozen objects; only reference cycles that are already garbage at
the freeze would never be reclaimed, which is why a full collection runs first.

What a reload builds later (a new classifier) is not frozen: collections walk it as before, which
is cheap beside LiteLLM's frozen objects, and a second freeze would stop the event loop for a full
collection. ``BIOROUTER_GC_FREEZE=0`` turns it off (e.g. to compare, or to debug memory).
"""

from __future__ import annotations

import gc
import logging
import os
import time

__all__ = ["freeze_startup_heap"]

logger = logging.getLogger("biorouter.serving")


def freeze_startup_heap() -> bool:
    """Collect once, then freeze every object alive now; False when ``BIOROUTER_GC_FREEZE=0`` says not to."""
    if os.environ.get("BIOROUTER_GC_FREEZE", "1").strip() == "0":
        return False
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    logger.info(
        "biorouter: %d start-up objects frozen out of garbage collection (%.0f ms)",
        gc.get_freeze_count(),
        1000 * (time.perf_counter() - start),
    )
    return True
