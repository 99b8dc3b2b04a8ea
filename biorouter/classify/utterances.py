"""Example requests per task, one file per task: ``utterances/<task>.txt``.

The files are edited by non-developers: one example per line, ``#`` starts a comment line,
blank lines are ignored. The file name (without ``.txt``) is the task name. Problems name the
file and line so a person can jump straight to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from biorouter.errors import ConfigError, Problem
from biorouter.files import display_path

__all__ = ["MIN_UTTERANCES", "load_utterances", "utterance_problems"]

MIN_UTTERANCES = 10
MAX_UTTERANCE_CHARS = 1000
_TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _read_lines(path: Path, display: str) -> tuple[list[tuple[int, str]], list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return [], [Problem(display, (), f"not UTF-8 text: {e.reason} at byte {e.start}")]
    lines = []
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_UTTERANCE_CHARS:
            problems.append(Problem(display, (f"line {number}",), f"longer than {MAX_UTTERANCE_CHARS} characters"))
            continue
        lines.append((number, line))
    return lines, problems


def utterance_problems(folder: Path, *, display_root: Path | None = None) -> tuple[dict[str, list[str]], list[Problem]]:
    """Load every task file and list every problem (duplicates, too few, bad names) without raising."""
    if not folder.is_dir():
        return {}, [Problem(str(folder), (), "utterances folder not found")]
    tasks: dict[str, list[str]] = {}
    problems: list[Problem] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for path in sorted(folder.glob("*.txt")):
        display = display_path(path, display_root)
        task = path.stem
        if not _TASK_NAME.match(task):
            problems.append(Problem(display, (), f"file name must be a lower_snake_case task name, not '{task}'"))
            continue
        lines, file_problems = _read_lines(path, display)
        problems.extend(file_problems)
        kept = []
        for number, line in lines:
            key = " ".join(line.lower().split())
            if key in first_seen:
                other, other_line = first_seen[key]
                problems.append(Problem(display, (f"line {number}",), f"duplicate of {other} line {other_line}"))
                continue
            first_seen[key] = (display, number)
            kept.append(line)
        if len(kept) < MIN_UTTERANCES:
            problems.append(Problem(display, (), f"has {len(kept)} utterances; a task needs at least {MIN_UTTERANCES}"))
        tasks[task] = kept
    if not tasks and not problems:
        problems.append(Problem(str(folder), (), "no <task>.txt files found"))
    return tasks, problems


def load_utterances(folder: Path, *, display_root: Path | None = None) -> Mapping[str, list[str]]:
    """Every task's utterances; raises ConfigError listing every problem found."""
    tasks, problems = utterance_problems(folder, display_root=display_root)
    if problems:
        raise ConfigError(problems)
    return tasks
