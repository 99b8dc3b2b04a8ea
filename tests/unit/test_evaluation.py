"""Behaviour of the evaluation metrics, file I/O and rendering behind ``biorouter eval``."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from biorouter.classify.evaluation import (
    NO_SOURCE,
    NONE_LABEL,
    EvalExample,
    EvalReport,
    Prediction,
    build_report,
    per_source,
    plot_confusion,
    read_examples,
    render_report,
    render_sources,
    source_half,
    source_unit,
    write_predictions,
)
from biorouter.errors import BiorouterError, ConfigError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pred(label: str, task: str | None, text: str = "q", confidence: float = 0.9) -> Prediction:
    return Prediction(text=text, label=label, task=task, confidence=confidence)


def small_confusion() -> list[Prediction]:
    # gold -> predicted: a->a x3, a->b, b->b x2, b->a, c->c, c->b   (n = 9)
    pairs = [("a", "a")] * 3 + [("a", "b")] + [("b", "b")] * 2 + [("b", "a"), ("c", "c"), ("c", "b")]
    return [pred(gold, task) for gold, task in pairs]


# --- build_report -------------------------------------------------------------------------------


def test_perfect_predictions_score_one_everywhere() -> None:
    report = build_report([pred("x", "x"), pred("y", "y"), pred("y", "y")])
    assert report.examples == 3
    assert report.accuracy == 1.0
    assert report.macro_f1 == 1.0
    assert report.labels == ["x", "y"]
    assert report.confusion == [[1, 0], [0, 2]]
    for m in report.per_class.values():
        assert (m.precision, m.recall, m.f1) == (1.0, 1.0, 1.0)
    assert report.group_accuracy is None


def test_small_confusion_matches_hand_computed_metrics() -> None:
    report = build_report(small_confusion())
    # rows = gold a, b, c; columns = predicted a, b, c
    assert report.labels == ["a", "b", "c"]
    assert report.confusion == [[3, 1, 0], [1, 2, 0], [0, 1, 1]]
    # a: TP 3, predicted 3+1+0 = 4, support 3+1 = 4 -> P 3/4, R 3/4, F1 3/4
    # b: TP 2, predicted 1+2+1 = 4, support 1+2 = 3 -> P 2/4, R 2/3, F1 2*2/(3+4) = 4/7
    # c: TP 1, predicted 0+0+1 = 1, support 1+1 = 2 -> P 1/1, R 1/2, F1 2*1/(2+1) = 2/3
    a, b, c = (report.per_class[k] for k in "abc")
    assert (a.precision, a.recall, a.f1, a.support, a.predicted) == (0.75, 0.75, 0.75, 4, 4)
    assert (b.precision, b.support, b.predicted) == (0.5, 3, 4)
    assert (b.recall, b.f1) == pytest.approx((2 / 3, 4 / 7))
    assert (c.precision, c.recall, c.support, c.predicted) == (1.0, 0.5, 2, 1)
    assert c.f1 == pytest.approx(2 / 3)
    # accuracy = (3 + 2 + 1) / 9; macro-F1 = (3/4 + 4/7 + 2/3) / 3
    assert report.accuracy == pytest.approx(6 / 9)
    assert report.macro_f1 == pytest.approx((3 / 4 + 4 / 7 + 2 / 3) / 3)


def test_abstentions_count_as_wrong_and_form_a_last_none_column() -> None:
    report = build_report([pred("a", "a"), pred("a", None), pred("b", None), pred("b", "b")])
    assert report.labels == ["a", "b", NONE_LABEL]
    assert report.confusion == [[1, 0, 1], [0, 1, 1], [0, 0, 0]]
    assert report.accuracy == 0.5
    assert report.per_class["a"].recall == 0.5
    assert report.per_class["a"].precision == 1.0
    none = report.per_class[NONE_LABEL]
    assert (none.support, none.predicted, none.precision, none.recall, none.f1) == (0, 2, 0.0, 0.0, 0.0)
    # macro-F1 averages a and b only: F1 = 2*1/(2+1) = 2/3 each
    assert report.macro_f1 == pytest.approx(2 / 3)


def test_predicted_only_label_is_in_confusion_but_not_in_macro_f1() -> None:
    report = build_report([pred("b", "b"), pred("b", "embeddings"), pred("a", "a"), pred("a", None)])
    assert report.labels == ["a", "b", "embeddings", NONE_LABEL]
    assert report.confusion[1] == [0, 1, 1, 0]
    assert [row[2] for row in report.confusion] == [0, 1, 0, 0]
    assert report.per_class["embeddings"].support == 0
    assert report.per_class["embeddings"].predicted == 1
    # a: P 1, R 1/2, F1 2/3; b: P 1, R 1/2, F1 2/3 -> mean 2/3 (embeddings' F1 0 not averaged in)
    assert report.macro_f1 == pytest.approx(2 / 3)


def test_metrics_agree_with_sklearn_on_a_noisy_fixture() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(20240601)
    gold_labels = ["alignment", "code", "literature", "structure", "variant"]
    predictions = []
    for i in range(300):
        truth = rng.choice(gold_labels)
        roll = rng.random()
        task = truth if roll < 0.7 else None if roll < 0.78 else rng.choice([*gold_labels, "embeddings"])
        predictions.append(pred(truth, task, text=f"q{i}"))
    report = build_report(predictions)

    y_true = [p.label for p in predictions]
    y_pred = [NONE_LABEL if p.task is None else p.task for p in predictions]
    gold = sorted(set(y_true))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=gold, zero_division=0
    )
    assert report.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert report.macro_f1 == pytest.approx(
        metrics.f1_score(y_true, y_pred, labels=gold, average="macro", zero_division=0)
    )
    for i, label in enumerate(gold):
        m = report.per_class[label]
        assert (m.precision, m.recall, m.f1) == pytest.approx((precision[i], recall[i], f1[i]))
        assert m.support == support[i]
    expected = metrics.confusion_matrix(y_true, y_pred, labels=report.labels).tolist()
    assert report.confusion == expected


def test_no_predictions_is_refused() -> None:
    with pytest.raises(BiorouterError, match="no predictions"):
        build_report([])


# --- read_examples ------------------------------------------------------------------------------


def test_read_examples_skips_blank_lines_and_ignores_extra_keys(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    lines = [
        {"text": "align these reads", "label": "alignment", "source": "hand", "license": "CC0"},
        {"text": "écris une fonction", "label": "code", "extra": [1, 2], "source": 7},
    ]
    data.write_text("\n" + json.dumps(lines[0]) + "\n\n   \n" + json.dumps(lines[1]) + "\n", "utf-8")
    assert read_examples(data) == [
        EvalExample(text="align these reads", label="alignment", source="hand", license="CC0"),
        EvalExample(text="écris une fonction", label="code"),
    ]


def test_read_examples_reports_every_bad_line_with_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        "\n".join(
            [
                '{"text": "fine", "label": "code"}',  # 1
                "{not json",  # 2
                '["a", "list"]',  # 3
                '{"label": "code"}',  # 4
                '{"text": "", "label": 3}',  # 5
                "",  # 6 (blank, skipped)
                '{"text": "ok", "label": "   "}',  # 7
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        read_examples(data)
    found = {(p.location, p.message.split(":")[0]) for p in caught.value.problems}
    assert found == {
        (("line 2",), "invalid JSON"),
        (("line 3",), "expected a JSON object, got array"),
        (("line 4", "text"), "missing"),
        (("line 5", "text"), "must not be empty"),
        (("line 5", "label"), "must be a string, got number"),
        (("line 7", "label"), "must not be empty"),
    }
    assert all(p.source == str(data) for p in caught.value.problems)
    assert f"{data}: line 4 -> text: missing" in str(caught.value)
    assert "6 configuration problems" in str(caught.value)


def test_read_examples_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(ConfigError, match="not found") as caught:
        read_examples(missing)
    assert caught.value.problems[0].source == str(missing)


def test_read_examples_file_without_examples_is_a_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no examples"):
        read_examples(empty)


# --- write_predictions --------------------------------------------------------------------------


def test_write_predictions_round_trips_in_order_with_non_ascii(tmp_path: Path) -> None:
    out = tmp_path / "predictions.jsonl"
    predictions = [
        pred("code", "code", text="écrire un parseur FASTA — vite", confidence=0.93),
        pred("alignment", None, text="比对这些读段", confidence=0.12),
        pred("variant", "structure", text="ΔF508 effect?", confidence=0.5),
    ]
    write_predictions(out, predictions)
    raw = out.read_bytes().decode("utf-8")
    assert "比对这些读段" in raw  # written as UTF-8, not \u escapes
    rows = [json.loads(line) for line in raw.splitlines()]
    assert [list(row) for row in rows] == [["text", "label", "task", "confidence", "source"]] * 3
    assert [Prediction(**row) for row in rows] == predictions


# --- render_report ------------------------------------------------------------------------------


def test_render_report_lists_every_label_and_the_accuracy() -> None:
    report = build_report([*small_confusion(), pred("a", None), pred("c", "embeddings")])
    text = render_report(report)
    assert f"{report.accuracy:.1%}" in text
    assert "macro-F1" in text
    for label in report.labels:
        assert any(line.startswith(label) for line in text.splitlines()), label
    assert "left out of macro-F1" in text


def test_render_report_fits_120_columns_for_ten_bioinformatics_labels() -> None:
    labels = [
        "sequence_alignment",
        "sequence_design",
        "variant_annotation",
        "protein_structure",
        "literature_search",
        "code_generation",
        "pathway_analysis",
        "single_cell",
        "phylogenetics",
        "general_chat",
    ]
    rng = random.Random(7)
    report = build_report([pred(g, rng.choice(labels)) for g in labels for _ in range(150)])
    text = render_report(report)
    assert max(len(line) for line in text.splitlines()) <= 120
    # "sequence_alignment"/"sequence_design" share 8 leading characters: columns get numbered
    matrix = text.split("confusion matrix")[1].splitlines()[1:]
    assert matrix[1].startswith("1 code_generation")
    assert any(line.startswith("10 variant_annotation") for line in matrix)
    assert len({len(line) for line in matrix}) == 1  # aligned


# --- plot_confusion -----------------------------------------------------------------------------


def test_plot_confusion_writes_a_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))  # no writes to ~/.config, no cache warnings
    pytest.importorskip("matplotlib")
    report = build_report([*small_confusion(), pred("a", None), pred("c", "embeddings")])
    out = tmp_path / "confusion.png"
    assert plot_confusion(report, out) == out
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1024


def test_plot_confusion_without_matplotlib_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    report = EvalReport(examples=1, accuracy=1.0, macro_f1=1.0, labels=["a"], per_class={}, confusion=[[1]])
    with pytest.raises(BiorouterError, match=r"biorouter\[plot\]") as caught:
        plot_confusion(report, tmp_path / "x.png")
    assert isinstance(caught.value.__cause__, ImportError)
    assert not (tmp_path / "x.png").exists()


# --- per-source figures and the cross-source split ----------------------------------------------


def test_the_source_unit_is_the_repository_so_files_of_one_benchmark_stay_together() -> None:
    assert source_unit("owner/bench:data/test/a.csv") == "owner/bench"
    assert source_unit("owner/bench") == "owner/bench"
    assert source_unit(None) == source_unit("  ") == NO_SOURCE
    assert source_half("owner/bench:data/a.csv") == source_half("owner/bench:data/b.csv")


def test_the_split_is_fixed_by_a_hash_and_puts_sources_on_both_sides() -> None:
    # A fixed hash: the same name always falls on the same side, whatever else is in the file.
    names = [f"owner{i}/bench{i}" for i in range(40)]
    halves = [source_half(name) for name in names]
    assert halves == [source_half(name) for name in names]
    assert 10 <= halves.count("check") <= 30  # about half each, not everything on one side
    # The halves the README's cross-source figures rest on (routing_dev.jsonl's repositories).
    assert source_half("ab235/AttnGCG-attack") == "check"
    assert source_half("tatsu-lab/alpaca_eval") == "check"
    assert source_half("hendrycks/test") == "tune"
    assert source_half("xxxiaol/QRData") == "tune"


def test_per_source_counts_each_repository_separately_largest_first() -> None:
    rows = [
        Prediction(text="a", label="x", task="x", confidence=0.5, source="big/one:f1"),
        Prediction(text="b", label="y", task="x", confidence=0.5, source="big/one:f2"),
        Prediction(text="c", label="x", task="x", confidence=0.5, source="big/one:f1"),
        Prediction(text="d", label="y", task="y", confidence=0.5, source="small/two:f"),
        Prediction(text="e", label="y", task=None, confidence=0.0),
    ]
    figures = per_source(rows)
    assert [(f.source, f.examples, f.correct) for f in figures] == [
        ("big/one", 3, 2),
        (NO_SOURCE, 1, 0),
        ("small/two", 1, 1),
    ]
    assert figures[0].labels == {"x": 2, "y": 1}
    assert figures[0].accuracy == pytest.approx(2 / 3)
    text = render_sources(figures)
    assert "big/one" in text
    assert "66.7%" in text
    assert "x 2, y 1" in text
    assert f" {source_half('big/one')} " in text.splitlines()[1]
