"""The ask in a long request: the prose around pasted code, tables and logs.

A user who pastes 300 lines of code or a sample sheet and then asks "why does this fail?" wants
the *question* routed; the paste says little about the task and, cut to the encoder's token budget,
crowds the question out (measured: half of such requests went to the paste's task, not the ask's).
So before a long request is embedded, each run of pasted lines is folded to one word saying what
it was — "(code)", "(table)", "(log)" — and the prose is kept whole. Short requests, and requests that are
all paste with no prose (a signature and docstring to complete), are left as they are.

Lines are judged one at a time, by their shape, not their language: fenced blocks, tab-separated
or comma-heavy rows, indented code, log lines (a timestamp or level first), and lines dense in
code symbols or digits count as pasted; what remains is prose.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["ask_text"]

# Below this many characters a request is read whole: there is nothing to fold.
MIN_FOLD_CHARS: Final = 600
# Fold only when pasted lines carry at least this share of the text (a paragraph with one code line stays).
MIN_PASTED_SHARE: Final = 0.4

_FENCE = re.compile(r"^\s*(?:```|~~~)")
_LOG_LINE = re.compile(
    r"^\s*(?:\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\[?\d\d:\d\d:\d\d|\[?(?:INFO|WARN(?:ING)?|ERROR|DEBUG|TRACE|FATAL)\b"
    r"|(?:Error|Warning|Exception|Caused by|Traceback)\b.*[:(]|File \"[^\"]+\", line \d|at [\w.$]+\()"
)
# A keyword counts only with the syntax around it: prose lines start with "If", "For", "With" and "Return" too.
_CODE_START = re.compile(
    r"^\s*(?:def\s+\w+\s*\(|class\s+\w+\s*[(:]|import\s+[\w.]+(?:\s+as\s+\w+)?\s*$|from\s+[\w.]+\s+import\s|"
    r"(?:if|elif|for|while|with|try|except|else|finally|async\s+def)\b[^\n]*:\s*$|return(?:\s+[\w.()\[\],]+)?\s*$|"
    r"await\s+[\w.]+\(|library\(|require\(|function\s*\w*\s*\(|(?:const|let|var)\s+\w+\s*=|(?:public|private)\s+\w+|"
    r"#include|#!|(?:SELECT|INSERT|UPDATE|CREATE)\s|@\w+(?:\(|$)|\}|\{|\)|>>>|\$ |>\s*\w+\s*<-)"
)
_CODE_END = re.compile(r"[;{}]\s*$")  # a statement, a block opening or closing
_COMMENT = re.compile(r"^\s*(?://|/\*|\*|--\s|#\s)")
_SYMBOLS = frozenset("{}[]()=;<>_/\\|$#*+^~`")


def _pasted(line: str) -> bool:
    """Whether a non-blank line reads as pasted code, data or log rather than as prose."""
    stripped = line.strip()
    if "\t" in stripped or line.startswith(("    ", "\t")):
        return True
    if _LOG_LINE.match(stripped) or _CODE_START.match(stripped) or _CODE_END.search(stripped):
        return True
    if _COMMENT.match(stripped):
        return True
    size = len(stripped)
    symbols = sum(char in _SYMBOLS for char in stripped)
    digits = sum(char.isdigit() for char in stripped)
    commas = stripped.count(",")
    words = stripped.count(" ") + 1
    return symbols / size > 0.08 or digits / size > 0.3 or (commas >= 3 and commas >= words - 1)


def _run_hint(run: list[str]) -> str:
    """What stands in for a folded run: its kind in a word, so "what is wrong here?" still says with what.

    The kind and not the run's first line: a line of real code pulled questions about something
    else toward the code tasks (measured on questions pasted after code or rows: 68% routed by
    the question with the first line kept, 90% with the kind, 92% with nothing).
    """
    if any(_FENCE.match(line) or _CODE_START.match(line.strip()) or _CODE_END.search(line) for line in run):
        return "(code)"
    if any(_LOG_LINE.match(line.strip()) for line in run):
        return "(log)"
    if any("\t" in line or line.count(",") >= 3 for line in run):
        return "(table)"
    return "(pasted text)"


def ask_text(text: str) -> str:
    """``text`` with each run of pasted lines folded to its kind, when pasted lines dominate it."""
    if len(text) < MIN_FOLD_CHARS:
        return text
    lines = text.split("\n")
    pasted = [False] * len(lines)
    fenced = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            pasted[index] = True
            fenced = not fenced
        elif fenced:
            pasted[index] = True
        elif line.strip():
            pasted[index] = _pasted(line)
    pasted_chars = sum(len(line) + 1 for line, flag in zip(lines, pasted, strict=True) if flag)
    prose = [line for line, flag in zip(lines, pasted, strict=True) if not flag and line.strip()]
    if pasted_chars < MIN_PASTED_SHARE * len(text) or sum(len(line) for line in prose) < 8:
        return text
    kept: list[str] = []
    run: list[str] = []  # the pasted lines since the last prose line
    for line, flag in zip([*lines, ""], [*pasted, False], strict=True):  # a sentinel prose line closes the last run
        if flag:
            run.append(line)
            continue
        if run:
            kept.append(_run_hint(run))
            run = []
        if line.strip():
            kept.append(line)
    return "\n".join(kept)
