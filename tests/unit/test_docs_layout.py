"""The docs as a floor plan: a short README that points into docs/, and no link that leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..docs_examples import DOCS, ROOT

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move the detail to a page in docs/ and link it"


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_each_page_opens_with_a_title_and_what_the_reader_comes_for(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), f"{page.name} does not start with a '# ' title"
    first_text = next(line for line in lines[1:] if line.strip())
    assert not first_text.startswith(("#", "```", "|")), f"{page.name}: the title is not followed by a sentence"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_that_exist(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (doc.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"
