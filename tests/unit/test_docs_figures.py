"""The docs as a contract: quoted figures match the file the benchmarks write, and every example is marked.

``<!--fig:KEY-->`` after a figure in README.md or docs/*.md names its entry in ``docs/figures.json``
(written by ``bench/figures.py``); the text just before the marker must be that entry's ``text``.
Every ``sh``/``python`` example says whether ``tests/proxy/test_docs_examples.py`` runs it, or why not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..docs_examples import DOCS, ROOT, examples

FIGURES = json.loads((ROOT / "docs" / "figures.json").read_text(encoding="utf-8"))
_MARK = re.compile(r"<!--fig:([\w.\-]+)-->")


def quoted() -> list[tuple[str, str, str]]:
    """(where, key, the text before the marker) for every figure marker in the docs."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in _MARK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1), text[: match.start()]))
    return found


def test_the_docs_quote_figures_from_the_file() -> None:
    assert len(quoted()) >= 10


@pytest.mark.parametrize(("where", "key", "before"), quoted(), ids=lambda v: v if len(v) < 60 else "")
def test_a_quoted_figure_is_the_one_the_benchmark_wrote(where: str, key: str, before: str) -> None:
    assert key in FIGURES, f"{where}: no figure '{key}' in docs/figures.json (run the bench that measures it)"
    expected = FIGURES[key]["text"]
    written = before.rsplit(None, 1)[-1] if before.strip() else ""
    assert before.endswith(expected), f"{where}: the docs say {written!r}, docs/figures.json says {expected!r}"


@pytest.mark.parametrize("key", sorted(FIGURES))
def test_every_figure_says_what_it_was_measured_on_and_by_which_script(key: str) -> None:
    figure = FIGURES[key]
    assert figure["data"].strip()
    assert (ROOT / figure["source"]).is_file(), f"{key}: source {figure['source']} does not exist"


def test_a_changed_figure_fails(tmp_path: Path) -> None:
    """The check itself: a doc quoting 77.8% where the file says 77.4% is caught."""
    key = "lexical.external.accuracy"
    doc = f"about 77.8%<!--fig:{key}--> on the external set"
    before = doc[: doc.index("<!--fig:")]
    assert not before.endswith(FIGURES[key]["text"])


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.where)
def test_every_shell_and_python_example_is_marked_run_or_skip_with_a_reason(example) -> None:  # type: ignore[no-untyped-def]
    assert example.marker in ("run", "skip"), (
        f"{example.where}: put '<!-- docs-test: run -->' or '<!-- docs-test: skip (why) -->' on the line "
        "before this example"
    )
    if example.marker == "skip":
        assert example.reason
