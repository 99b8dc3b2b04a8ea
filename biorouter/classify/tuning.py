"""Per-task confidence thresholds, proposed from labelled data (``biorouter tune``).

The classifier's score means different things for different tasks: a 0.2 for ``math_statistics``
may be almost always right while a 0.2 for ``orchestration`` is a coin toss. Below a task's
threshold the request is *unsure* and takes the profile's unsure path (the default route, or the
safer of the two best tasks' routes). A threshold is worth raising only where the unsure path
serves people better than trusting the classifier, so the objective is what users feel: did the
request reach the deployment group its true task would have reached (group accuracy)?

For each task, over the examples the classifier ranks first for it, every observed score is a
candidate threshold; the one that maximises group accuracy wins, the lowest on ties (trust the
classifier unless data says otherwise), placed halfway to the next lower score so a prompt
scoring a hair below a seen one is treated alike. Tasks with fewer than ``min_support``
examples keep their current threshold: a few prompts are not evidence. So do tasks the profile
prefers (``classifier.prefer``, safety): raising their threshold would send the very requests
the margin exists for to the default route (measured: AdvBench 100% -> 88% group accuracy).

Everything here is pure: scores in, proposal out. The profile file is edited in place by
:func:`write_thresholds`, which changes only ``classifier.per_task`` and keeps every comment.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from biorouter.errors import BiorouterError, ConfigError, Problem
from biorouter.files import replaced_atomically
from biorouter.routing.catalogue import Catalogue
from biorouter.routing.decision import Signals
from biorouter.routing.policy import decide
from biorouter.routing.profiles import Profile, load_profile

__all__ = [
    "MarginProposal",
    "Scored",
    "TaskThreshold",
    "TuneReport",
    "propose_margin",
    "propose_thresholds",
    "render_yaml",
    "write_thresholds",
]


class Scored(BaseModel):
    """One labelled example as the classifier saw it."""

    model_config = ConfigDict(frozen=True)

    label: str
    scores: Mapping[str, float]

    @property
    def top(self) -> tuple[str, float]:
        task = max(self.scores, key=lambda name: (self.scores[name], name))
        return task, self.scores[task]


class TaskThreshold(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    examples: int  # examples the classifier ranked first for this task
    current: float
    proposed: float
    correct_before: int  # of those examples, reaching the right group with the current threshold
    correct_after: int
    note: str = ""


class TuneReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    profile: str
    min_confidence: float
    examples: int
    group_accuracy_before: float
    group_accuracy_after: float
    tasks: tuple[TaskThreshold, ...]

    def thresholds(self) -> dict[str, float]:
        """The proposed ``per_task`` map: only tasks whose threshold differs from ``min_confidence``."""
        return {t.task: t.proposed for t in self.tasks if t.proposed != self.min_confidence}


def _group(signals: Signals, profile: Profile, catalogue: Catalogue) -> str:
    try:
        return decide(signals, profile, catalogue).group
    except BiorouterError:  # a request the profile would refuse reaches no group
        return "(refused)"


def _outcomes(example: Scored, profile: Profile, catalogue: Catalogue) -> tuple[bool, bool]:
    """Whether the example reaches its true task's group when trusted, and when unsure."""
    task, _confidence = example.top
    expected = _group(Signals(requested_model="auto", task=example.label, confidence=1.0), profile, catalogue)
    trusted = Signals(requested_model="auto", task=task, confidence=1.0, scores=example.scores)
    unsure = Signals(requested_model="auto", task=task, confidence=-1.0, scores=example.scores)
    return _group(trusted, profile, catalogue) == expected, _group(unsure, profile, catalogue) == expected


def _best_threshold(rows: Sequence[tuple[float, bool, bool]], current: float) -> tuple[float, int, int]:
    """(threshold, correct with it, correct with ``current``) over (confidence, trusted ok, unsure ok) rows."""

    def correct(threshold: float) -> int:
        return sum(ok if confidence >= threshold else fallback for confidence, ok, fallback in rows)

    scores = sorted({confidence for confidence, _, _ in rows})
    candidates = [0.0, *scores, 1.0 + 1e-9]
    best = max(candidates, key=lambda threshold: (correct(threshold), -threshold))
    below = [score for score in scores if score < best]
    placed = (best + below[-1]) / 2 if below and best <= 1.0 else min(best, 1.0)
    return round(placed, 3), correct(best), correct(current)


def propose_thresholds(
    examples: Sequence[Scored], profile: Profile, catalogue: Catalogue, *, min_support: int = 5
) -> TuneReport:
    """Per-task thresholds that maximise group accuracy on ``examples`` under ``profile``."""
    if not examples:
        raise BiorouterError("no examples to tune on")
    by_task: dict[str, list[tuple[float, bool, bool]]] = {}
    for example in examples:
        task, confidence = example.top
        by_task.setdefault(task, []).append((confidence, *_outcomes(example, profile, catalogue)))
    tasks = []
    before = after = 0
    policy = profile.classifier
    for task in sorted(set(by_task) | set(policy.per_task)):
        rows = by_task.get(task, [])
        current = policy.threshold(task)
        note = ""
        if len(rows) < min_support or task in policy.prefer:
            kept = sum(ok if c >= current else fallback for c, ok, fallback in rows)
            proposed, correct_after, correct_before = current, kept, kept
            # A preferred task (classifier.prefer: safety) takes requests it is merely close on; a
            # threshold would send its own unsure answers away, so its threshold is not moved.
            note = "preferred task: kept" if task in policy.prefer else f"fewer than {min_support} examples: kept"
        else:
            proposed, correct_after, correct_before = _best_threshold(rows, current)
            if correct_after == correct_before:  # no evidence for a change: keep what the profile says
                proposed = current
        tasks.append(
            TaskThreshold(
                task=task,
                examples=len(rows),
                current=current,
                proposed=proposed,
                correct_before=correct_before,
                correct_after=correct_after,
                note=note,
            )
        )
        before, after = before + correct_before, after + correct_after
    return TuneReport(
        profile=profile.name,
        min_confidence=policy.min_confidence,
        examples=len(examples),
        group_accuracy_before=before / len(examples),
        group_accuracy_after=after / len(examples),
        tasks=tuple(tasks),
    )


class MarginProposal(BaseModel):
    """A ``classifier.prefer`` margin for one task, and what it changed on the data it was fitted to."""

    model_config = ConfigDict(frozen=True)

    task: str
    margin: float
    miss_cost: float
    examples: int
    task_examples: int  # examples labelled with the task
    recovered: int  # of those, ranked second-or-lower by the classifier but won back by the margin
    lost: int  # right answers of other tasks the margin turns into the task


def propose_margin(
    examples: Sequence[Scored], task: str, *, miss_cost: float = 3.0, max_margin: float = 0.3
) -> MarginProposal:
    """The margin within which ``task`` should win, fitted to ``examples``.

    Widening the margin wins back examples of ``task`` the classifier ranked just below the top,
    and takes right answers away from other tasks. A miss of ``task`` weighs ``miss_cost`` times a
    lost right answer (safety: a harmful request answered by a general model costs more than a
    harmless one answered by the guard); the margin maximising the weighted gain wins, the smallest
    on ties, placed halfway to the next larger gap so that a prompt a hair further is treated alike.
    No gain: margin 0.
    """
    if not examples:
        raise BiorouterError("no examples to fit a margin on")
    gaps: list[tuple[float, int, int]] = []  # (gap to the top, recovered, lost)
    for example in examples:
        top, best = example.top
        if top == task or task not in example.scores:
            continue
        gap = best - example.scores[task]
        if gap > max_margin:
            continue
        gaps.append((gap, int(example.label == task), int(example.label == top)))
    gaps.sort()
    best_margin, best_gain, recovered, lost = 0.0, 0.0, 0, 0
    running_recovered = running_lost = 0
    for i, (gap, gained, took) in enumerate(gaps):
        running_recovered += gained
        running_lost += took
        if i + 1 < len(gaps) and gaps[i + 1][0] == gap:
            continue  # equal gaps fall on the same side of any margin
        gain = miss_cost * running_recovered - running_lost
        if gain > best_gain:
            following = gaps[i + 1][0] if i + 1 < len(gaps) else min(max_margin, gap + 0.01)
            best_margin, best_gain = (gap + following) / 2, gain
            recovered, lost = running_recovered, running_lost
    return MarginProposal(
        task=task,
        margin=round(best_margin, 3),
        miss_cost=miss_cost,
        examples=len(examples),
        task_examples=sum(example.label == task for example in examples),
        recovered=recovered,
        lost=lost,
    )


def render_yaml(thresholds: Mapping[str, float]) -> str:
    """The ``per_task`` block to paste under ``classifier:``."""
    lines = ["  per_task:"] + [f"    {task}: {value}" for task, value in sorted(thresholds.items())]
    return "\n".join(lines) if thresholds else "  per_task: {}"


_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_CLASSIFIER = re.compile(r"^classifier\s*:\s*(#.*)?$")


def _edited(text: str, thresholds: Mapping[str, float]) -> str:
    lines = text.splitlines()
    block = render_yaml(thresholds).splitlines()
    start = next((i for i, line in enumerate(lines) if _CLASSIFIER.match(line)), None)
    if start is None:
        if any(line.startswith("classifier") for line in lines):
            raise BiorouterError("classifier: is written inline; paste the per_task block by hand")
        anchor = next((i for i, line in enumerate(lines) if line.startswith("default_route")), len(lines))
        return "\n".join([*lines[:anchor], "classifier:", *block, "", *lines[anchor:]]) + "\n"
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t", "#"))):
        if lines[end].startswith("#") and end + 1 < len(lines) and _TOP_KEY.match(lines[end + 1]):
            break  # a comment introducing the next section belongs to it
        end += 1
    body = lines[start + 1 : end]
    kept: list[str] = []
    nested_in: int | None = None  # indent of a per_task: key being dropped, with everything under it
    for line in body:
        indent = len(line) - len(line.lstrip())
        if nested_in is not None and line.strip() and indent > nested_in:
            continue
        nested_in = None
        if re.match(r"^\s+per_task\s*:", line):
            nested_in = indent
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    trailing = body[len(kept) :] if not any(line.strip() for line in body[len(kept) :]) else [""]
    return "\n".join([*lines[: start + 1], *kept, *block, *trailing, *lines[end:]]) + "\n"


def write_thresholds(path: Path, thresholds: Mapping[str, float]) -> Profile:
    """Set ``classifier.per_task`` in the profile file, keeping its comments; the result is validated first."""
    text = path.read_text(encoding="utf-8")
    new = _edited(text, thresholds)
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / path.name
        trial.write_text(new, encoding="utf-8")
        try:
            profile = load_profile(trial, display=str(path))
        except ConfigError as e:
            raise ConfigError([*e.problems, Problem(str(path), ("classifier",), "not written")]) from e
        if dict(profile.classifier.per_task) != {k: float(v) for k, v in thresholds.items()}:
            raise BiorouterError(f"{path}: could not place per_task under classifier: (paste it by hand)")
    with replaced_atomically(path) as partial:
        partial.write_text(new, encoding="utf-8")
    return profile
