"""The proxy's start-up heap is frozen out of garbage collection after warm-up (biorouter.serving.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from biorouter.serving.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # other tests count on a collector that sees everything


def _collector_sees(obj: object) -> bool:
    return any(candidate is obj for candidate in gc.get_objects())


@pytest.mark.usefixtures("unfrozen")
def test_objects_alive_at_the_freeze_leave_the_collectors_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIOROUTER_GC_FREEZE", raising=False)
    loaded = {"index": [1.0, 2.0]}  # stands for what warm-up loaded (a container, so the collector tracks it)
    assert _collector_sees(loaded)
    assert freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert not _collector_sees(loaded)
    later = {"request": []}  # created after the freeze: collected as usual
    assert _collector_sees(later)


@pytest.mark.usefixtures("unfrozen")
def test_gc_freeze_0_leaves_the_heap_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOROUTER_GC_FREEZE", "0")
    assert not freeze_startup_heap()
    assert gc.get_freeze_count() == 0
