"""The shell and Python examples of README.md, profiles/README.md and docs/*.md, as the docs tests read them.

Every fenced ``sh`` or ``python`` block is preceded by a marker line saying whether the test suite
runs it against the stand-ins (``<!-- docs-test: run -->``) or why not (``<!-- docs-test: skip
(reason) -->``). Runnable shell examples are written for ``make run`` (``http://127.0.0.1:4000``,
``sk-local-...``); :func:`for_stack` points them at the test's own stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "profiles" / "README.md", *sorted((ROOT / "docs").glob("*.md")))
LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!-- docs-test: (run|skip \((?P<reason>[^)]{8,})\)) -->$")


@dataclass(frozen=True)
class Example:
    path: Path
    line: int  # of the opening fence
    language: str  # "sh" or "python"
    code: str
    marker: str | None  # "run", "skip", or None when unmarked
    reason: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples(paths: tuple[Path, ...] = DOCS) -> list[Example]:
    found: list[Example] = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            fence = _FENCE.match(lines[index])
            if fence is None:
                index += 1
                continue
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            language = LANGUAGES.get(fence.group(1))
            if language is not None:
                previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
                marker = _MARKER.match(previous.strip())
                kind = None if marker is None else marker.group(1).split(" ")[0]
                reason = None if marker is None else marker.group("reason")
                code = "\n".join(lines[index + 1 : end]) + "\n"
                found.append(Example(path, index + 1, language, code, kind, reason))
            index = end + 1
    return found


def for_stack(code: str, url: str, key: str) -> str:
    """The example pointed at a running stack instead of ``make run``'s port and key."""
    return code.replace("http://127.0.0.1:4000", url).replace("sk-local-...", key)
