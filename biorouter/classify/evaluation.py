"""Offline evaluation of the task classifier: the metrics behind ``biorouter eval``.

Routing quality is only as good as the task decision, so ``biorouter eval --data FILE.jsonl``
classifies a labelled set of ``{"text", "label"}`` lines and reports accuracy, macro-F1,
per-class precision/recall/F1 and the confusion matrix. The functions here are pure (no
classifier, no network) so that every number the command prints is unit-tested on its own;
the CLI only wires them to the classifier. matplotlib is optional and imported only when a
plot is asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from biorouter.errors import BiorouterError, ConfigError, Problem

__all__ = [
    "NONE_LABEL",
    "NO_SOURCE",
    "ClassMetrics",
    "EvalExample",
    "EvalReport",
    "Half",
    "Prediction",
    "SourceFigure",
    "build_report",
    "per_source",
    "plot_confusion",
    "read_examples",
    "render_report",
    "render_sources",
    "source_half",
    "source_unit",
    "write_predictions",
]

NONE_LABEL = "(none)"
"""Confusion-matrix column for predictions where the classifier abstained (``task is None``)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class EvalExample(BaseModel):
    """One labelled line of an evaluation file; ``source``/``license`` are carried, never used."""

    model_config = _FROZEN

    text: str
    label: str
    source: str | None = None
    license: str | None = None


class Prediction(BaseModel):
    """The classifier's answer for one example; ``task`` is None when it abstained or fell back."""

    model_config = _FROZEN

    text: str
    label: str
    task: str | None
    confidence: float
    source: str | None = None  # the example's ``source``, carried for per-source figures


class ClassMetrics(BaseModel):
    """Precision, recall and F1 of one label; ``support`` counts gold, ``predicted`` counts guesses."""

    model_config = _FROZEN

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


class EvalReport(BaseModel):
    """Everything ``biorouter eval`` reports; ``confusion[gold][predicted]`` follows ``labels``."""

    model_config = _FROZEN

    examples: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]
    group_accuracy: float | None = None


NO_SOURCE = "(no source)"
"""The source unit of examples whose line names no ``source``."""

Half = Literal["tune", "check"]


def source_unit(source: str | None) -> str:
    """The unit a cross-source split keeps whole: the repository a prompt came from.

    ``source`` values name a repository and a file (``owner/name:path``); prompts from two files
    of one benchmark share their authors and style, so they must fall on the same side of the
    split, else the check half would measure the tune half's siblings.
    """
    if source is None or not source.strip():
        return NO_SOURCE
    return source.split(":", 1)[0].strip()


def source_half(source: str | None) -> Half:
    """The fixed half of the cross-source split an example belongs to: ``tune`` or ``check``.

    The first byte of the SHA-256 of its :func:`source_unit`, even: ``check``, odd: ``tune``. A hash,
    not a list, so that the split is fixed before anyone looks at which prompts it is wrong on, and
    a new source falls on a side nobody chose. On ``routing_dev.jsonl`` it puts 6 repositories (150
    prompts, all 9 labels) in the check half and 4 (107 prompts, 7 labels) in the tune half.
    """
    digest = hashlib.sha256(source_unit(source).encode("utf-8")).digest()
    return "check" if digest[0] % 2 == 0 else "tune"


class SourceFigure(BaseModel):
    """Accuracy on the prompts of one source unit (a repository), and its half of the split."""

    model_config = _FROZEN

    source: str
    half: Half
    examples: int
    correct: int
    labels: dict[str, int]  # gold label -> examples

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples


def per_source(predictions: Sequence[Prediction]) -> list[SourceFigure]:
    """One figure per source unit, largest first (ties by name), so a bad source cannot hide in a mean."""
    grouped: dict[str, list[Prediction]] = {}
    for p in predictions:
        grouped.setdefault(source_unit(p.source), []).append(p)
    figures = [
        SourceFigure(
            source=unit,
            half=source_half(unit),
            examples=len(rows),
            correct=sum(p.task == p.label for p in rows),
            labels={label: sum(p.label == label for p in rows) for label in sorted({p.label for p in rows})},
        )
        for unit, rows in grouped.items()
    ]
    return sorted(figures, key=lambda f: (-f.examples, f.source))


def render_sources(figures: Sequence[SourceFigure]) -> str:
    """Per-source accuracy as aligned text, one line per source unit with its half and labels."""
    width = max(len("source"), *(len(f.source) for f in figures))
    lines = [f"{'source':<{width}}  {'half':<5}  {'n':>4}  {'accuracy':>8}  labels"]
    for f in figures:
        labels = ", ".join(f"{label} {count}" for label, count in f.labels.items())
        lines.append(f"{f.source:<{width}}  {f.half:<5}  {f.examples:>4}  {f.accuracy:>8.1%}  {labels}")
    return "\n".join(lines) + "\n"


def read_examples(path: Path) -> list[EvalExample]:
    """Read a JSON Lines file of ``{"text", "label"}`` objects, skipping blank lines.

    Extra keys are tolerated and ignored. Every bad line is reported (not just the first) in one
    ConfigError, each problem as ``file: line N -> field: message``.
    """
    source = str(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(source, (), "evaluation file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(source, (), f"cannot read evaluation file: {exc}")]) from exc

    problems: list[Problem] = []
    examples: list[EvalExample] = []
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        line = f"line {number}"
        try:
            obj: Any = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(Problem(source, (line,), f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(source, (line,), f"expected a JSON object, got {_json_type(obj)}"))
            continue
        fields: dict[str, str] = {}
        for name in ("text", "label"):
            value = obj.get(name)
            if name not in obj:
                problems.append(Problem(source, (line, name), "missing"))
            elif not isinstance(value, str):
                problems.append(Problem(source, (line, name), f"must be a string, got {_json_type(value)}"))
            elif not value.strip():
                problems.append(Problem(source, (line, name), "must not be empty"))
            else:
                fields[name] = value
        if len(fields) == 2:
            extras = {k: obj[k] for k in ("source", "license") if isinstance(obj.get(k), str)}
            examples.append(EvalExample(**fields, **extras))
    if not problems and not examples:
        problems.append(Problem(source, (), "no examples: the file has no non-blank lines"))
    if problems:
        raise ConfigError(problems)
    return examples


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def build_report(predictions: Sequence[Prediction]) -> EvalReport:
    """Score predictions against their gold labels.

    ``labels`` (the confusion-matrix order) is the gold labels sorted, then labels only ever
    predicted, sorted, then ``"(none)"`` if the classifier abstained at least once. An abstention
    counts as wrong. Precision, recall and F1 are 0.0 wherever their denominator is zero.

    ``macro_f1`` is the mean F1 over *gold* labels only (support > 0). A task the data never
    contains (say ``embeddings``) has F1 0 by construction; averaging it in would punish the
    classifier for the dataset's coverage, not its quality. Wrong predictions into such a label
    are not forgiven: they are already misses against the gold class's recall. This matches
    sklearn's ``f1_score(average="macro", labels=gold_labels)``.
    """
    if not predictions:
        raise BiorouterError("no predictions to evaluate")
    gold = sorted({p.label for p in predictions})
    predicted_only = sorted({p.task for p in predictions if p.task is not None} - set(gold))
    labels = gold + predicted_only + ([NONE_LABEL] if any(p.task is None for p in predictions) else [])
    index = {label: i for i, label in enumerate(labels)}

    confusion = [[0] * len(labels) for _ in labels]
    for p in predictions:
        confusion[index[p.label]][index[NONE_LABEL if p.task is None else p.task]] += 1

    per_class: dict[str, ClassMetrics] = {}
    for i, label in enumerate(labels):
        hits = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        per_class[label] = ClassMetrics(
            precision=hits / predicted if predicted else 0.0,
            recall=hits / support if support else 0.0,
            # F1 = 2PR/(P+R) = 2TP/(2TP+FP+FN) = 2TP/(support+predicted): exact, no 0/0.
            f1=2 * hits / (support + predicted) if support + predicted else 0.0,
            support=support,
            predicted=predicted,
        )
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return EvalReport(
        examples=len(predictions),
        accuracy=correct / len(predictions),
        macro_f1=sum(per_class[label].f1 for label in gold) / len(gold),
        labels=labels,
        per_class=per_class,
        confusion=confusion,
    )


def render_report(report: EvalReport) -> str:
    """Render the report as aligned plain text (no colours), about 120 columns for 10 labels."""
    lines = [
        f"examples: {report.examples}   accuracy: {report.accuracy:.1%}   macro-F1: {report.macro_f1:.3f}",
        "",
    ]
    width = max(len("label"), *(len(label) for label in report.labels))
    lines.append(f"{'label':<{width}}  {'precision':>9}  {'recall':>6}  {'F1':>5}  {'support':>7}  {'predicted':>9}")
    for label in report.labels:
        m = report.per_class[label]
        mark = "" if m.support else "  *"
        lines.append(
            f"{label:<{width}}  {m.precision:>9.3f}  {m.recall:>6.3f}  {m.f1:>5.3f}"
            f"  {m.support:>7}  {m.predicted:>9}{mark}"
        )
    if any(not report.per_class[label].support for label in report.labels):
        lines.append("* not in the data (support 0): left out of macro-F1")

    # Column headers are the first 8 characters of each label; if two collide, number them instead.
    headers = [label[:8] for label in report.labels]
    numbered = len(set(headers)) < len(headers)
    if numbered:
        headers = [str(i) for i in range(1, len(report.labels) + 1)]
    rows = [f"{i} {label}" if numbered else label for i, label in enumerate(report.labels, start=1)]
    corner = "gold \\ predicted"
    row_width = max(len(corner), *(len(r) for r in rows))
    col_widths = [max(len(h), *(len(str(row[j])) for row in report.confusion)) for j, h in enumerate(headers)]
    lines += ["", "confusion matrix (rows = gold, columns = predicted)"]
    lines.append(f"{corner:<{row_width}}" + "".join(f"  {h:>{w}}" for h, w in zip(headers, col_widths, strict=True)))
    for name, counts in zip(rows, report.confusion, strict=True):
        cells = "".join(f"  {c:>{w}}" for c, w in zip(counts, col_widths, strict=True))
        lines.append(f"{name:<{row_width}}{cells}")
    return "\n".join(lines) + "\n"


def write_predictions(path: Path, predictions: Sequence[Prediction]) -> None:
    """Write one ``{"text", "label", "task", "confidence", "source"}`` object per line, in input order, UTF-8."""
    with path.open("w", encoding="utf-8") as out:
        for p in predictions:
            out.write(json.dumps(p.model_dump(), ensure_ascii=False) + "\n")


def plot_confusion(report: EvalReport, path: Path, title: str = "biorouter task confusion matrix") -> Path:
    """Save a heatmap of the row-normalised confusion matrix (raw counts in the cells) as PNG.

    matplotlib is an optional extra, imported here with the non-interactive Agg backend.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise BiorouterError("--plot needs matplotlib: pip install 'biorouter[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(report.labels)
    # Rows with no gold examples (predicted-only labels, "(none)") stay all-zero.
    shares = [[c / sum(row) if sum(row) else 0.0 for c in row] for row in report.confusion]
    side = max(5.0, 0.7 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    try:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, label="share of gold row")
        ax.set_xticks(range(n), labels=report.labels, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), labels=report.labels)
        ax.set_xlabel("predicted task")
        ax.set_ylabel("gold label")
        for i, row in enumerate(report.confusion):
            for j, count in enumerate(row):
                colour = "white" if shares[i][j] > 0.5 else "black"
                ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=9)
        ax.set_title(f"{title}\naccuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.3f}, n={report.examples}")
        fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
