"""The measured figures the docs quote, in one file the benchmarks write: ``docs/figures.json``.

A benchmark calls :func:`record` with the figures it measured; each is stored under a key with the
text the docs quote (``"77.4%"``), the raw value, the data set it comes from, the script that wrote
it and the day. The docs put ``<!--fig:KEY-->`` right after a quoted figure, and
``tests/unit/test_docs_figures.py`` fails when the text before a marker is not the file's text for
that key, so a re-run benchmark that moves a figure shows up as a failing test until the docs follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures.json"

__all__ = ["FIGURES", "Figure", "record"]


class Figure(BaseModel):
    """One measured figure as the docs quote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="exactly as the docs quote it, e.g. '77.4%' or '0.772'")
    value: float
    data: str = Field(min_length=1, description="the data set or workload it was measured on")
    source: str = Field(min_length=1, description="the script that measured it, e.g. bench/eval_figures.py")
    measured: str = Field(default_factory=lambda: datetime.now(UTC).date().isoformat())
    note: str | None = None


def record(figures: Mapping[str, Figure], path: Path = FIGURES) -> None:
    """Merge ``figures`` into ``path`` (other benchmarks' keys are kept), sorted, one key per entry."""
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    current.update({key: figure.model_dump(exclude_none=True) for key, figure in figures.items()})
    path.write_text(json.dumps(dict(sorted(current.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, figure in sorted(figures.items()):
        print(f"  {key:<45} {figure.text:>10}   ({figure.data})")
    print(f"recorded {len(figures)} figures in {path}")
