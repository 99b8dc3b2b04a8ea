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


def mismatches(text: str, figures: dict[str, dict[str, str]], where: str) -> list[str]:
    """One message per figure marker in ``text`` whose key is unknown or whose quoted text differs."""
    found = []
    for match in _MARK.finditer(text):
        line = f"{where}:{text.count(chr(10), 0, match.start()) + 1}"
        key, before = match.group(1), text[: match.start()]
        if key not in figures:
            found.append(f"{line}: no figure '{key}' in docs/figures.json (run the bench that measures it)")
        elif not before.endswith(figures[key]["text"]):
            written = before.rsplit(None, 1)[-1] if before.strip() else ""
            found.append(f"{line}: the docs say {written!r}, docs/figures.json says {figures[key]['text']!r} ({key})")
    return found


def test_the_docs_quote_figures_from_the_file() -> None:
    count = sum(len(_MARK.findall(path.read_text(encoding="utf-8"))) for path in DOCS)
    assert count >= 10


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_figure_is_the_one_the_benchmark_wrote(path: Path) -> None:
    assert mismatches(path.read_text(encoding="utf-8"), FIGURES, str(path.relative_to(ROOT))) == []


def test_a_drifted_figure_or_an_unknown_key_is_caught() -> None:
    figures = {"lexical.external.accuracy": {"text": "77.4%"}}
    text = (
        "about 77.8%<!--fig:lexical.external.accuracy--> and 3 s<!--fig:nowhere-->, "
        "77.4%<!--fig:lexical.external.accuracy-->"
    )
    assert mismatches(text, figures, "x.md") == [
        "x.md:1: the docs say '77.8%', docs/figures.json says '77.4%' (lexical.external.accuracy)",
        "x.md:1: no figure 'nowhere' in docs/figures.json (run the bench that measures it)",
    ]


@pytest.mark.parametrize("key", sorted(FIGURES))
def test_every_figure_says_what_it_was_measured_on_and_by_which_script(key: str) -> None:
    figure = FIGURES[key]
    assert figure["data"].strip()
    assert (ROOT / figure["source"]).is_file(), f"{key}: source {figure['source']} does not exist"


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.where)
def test_every_shell_and_python_example_is_marked_run_or_skip_with_a_reason(example) -> None:  # type: ignore[no-untyped-def]
    assert example.marker in ("run", "skip"), (
        f"{example.where}: put '<!-- docs-test: run -->' or '<!-- docs-test: skip (why) -->' on the line "
        "before this example"
    )
    if example.marker == "skip":
        assert example.reason
