"""Sensitivity detector quality and speed: precision/recall on the labelled corpora, scan latency.

Prints figures; gates nothing (the regression floor lives in ``tests/unit/test_sensitivity.py``,
and absolute times depend on the machine). Quality: for ``tests/data/sensitivity/dev.jsonl``,
``holdout.jsonl`` and ``blind_holdout.jsonl``, the built-in rules plus the lab's sample-ID pattern,
a case counts as flagged when any rule fires; precision, recall, F1, the confusion counts, and per
category (per ``kind`` where a file has one) the recall (sensitive categories) or false-positive rate
(the others). Latency: median and p95 of ``scan`` over repeats for a short prompt, a ~2,000-char
clinical note and a ~100,000-char pasted table, none of which carries an identifier, so every rule
reads the whole text (the worst case). Run: ``python bench/sensitivity_eval.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from biorouter.sensitivity import SensitivityDetector

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "sensitivity"
LAB_PATTERN = ("lab_sample_id", r"\bSMP-\d{6}(?!\d)", False)

SHORT_PROMPT = "Why does my STAR alignment of SMPD1 knockdown samples give only 41% uniquely mapped reads?"
NOTE_PARAGRAPH = (
    "De-identified case for teaching. A 58-year-old man with a 30 pack-year smoking history presented "
    "with three months of progressive exertional dyspnoea and a dry cough. Examination showed fine bibasal "
    "inspiratory crackles and finger clubbing. HRCT demonstrated subpleural reticulation with honeycombing "
    "in a basal predominant distribution. FVC was 2.41 L (68% predicted) and DLCO 44% predicted. "
    "Autoimmune screen was negative. The MDT agreed a diagnosis of idiopathic pulmonary fibrosis and "
    "antifibrotic therapy was discussed; genetic testing for TERT and RTEL1 variants is being considered. "
)
TABLE_HEADER = "chrom,pos,ref,alt,gene,consequence,hgvs_p,gnomad_af,depth,qual,filter\n"
GENES = ("BRCA1", "BRCA2", "TP53", "PALB2", "ATM", "CHEK2", "MLH1", "MSH2", "APC", "PTEN")
CONSEQUENCES = ("missense_variant", "synonymous_variant", "stop_gained", "frameshift_variant", "splice_region")


def load_cases(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def clinical_note(size: int) -> str:
    text = ""
    while len(text) < size:
        text += NOTE_PARAGRAPH
    return text[:size]


def pasted_table(size: int, seed: int) -> str:
    rng = random.Random(seed)
    rows = ["Can you flag the likely pathogenic rows in this export?\n", TABLE_HEADER]
    length = sum(map(len, rows))
    while length < size:
        ref, alt = rng.sample("ACGT", 2)
        row = (
            f"chr{rng.randint(1, 22)},{rng.randint(10_000, 240_000_000)},{ref},{alt},{rng.choice(GENES)},"
            f"{rng.choice(CONSEQUENCES)},p.Arg{rng.randint(10, 2000)}His,{rng.random() / 1000:.2e},"
            f"{rng.randint(12, 400)},{rng.uniform(30, 3000):.1f},PASS\n"
        )
        rows.append(row)
        length += len(row)
    return "".join(rows)[:size]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def report_quality(detector: SensitivityDetector, name: str, cases: list[dict[str, Any]]) -> None:
    tp = fp = fn = tn = 0
    flagged_by_category: dict[tuple[str, bool], list[bool]] = defaultdict(list)
    for case in cases:
        flagged = bool(detector.scan([case["text"]]))
        sensitive = bool(case["sensitive"])
        # blind_holdout.jsonl labels every negative category "none"; its `kind` says what the text is
        flagged_by_category[(case.get("kind", case["category"]), sensitive)].append(flagged)
        if sensitive:
            tp, fn = (tp + 1, fn) if flagged else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if flagged else (fp, tn + 1)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else float("nan")
    print(f"{name}: {len(cases)} cases  precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}")
    print(f"  confusion: TP {tp}  FP {fp}  FN {fn}  TN {tn}")
    print(f"  {'category':<24}{'label':<11}{'n':>4}{'flagged':>9}{'recall':>9}{'FP rate':>9}")
    for (category, sensitive), flags in sorted(flagged_by_category.items(), key=lambda item: (not item[0][1], item[0])):
        hits = sum(flags)
        recall_cell = f"{hits / len(flags):>9.2f}" if sensitive else f"{'-':>9}"
        fp_cell = f"{'-':>9}" if sensitive else f"{hits / len(flags):>9.2f}"
        label = "sensitive" if sensitive else "clean"
        print(f"  {category:<24}{label:<11}{len(flags):>4}{hits:>9}{recall_cell}{fp_cell}")
    print()


def measure(detector: SensitivityDetector, text: str, repeats: int) -> tuple[list[float], tuple[str, ...]]:
    fired = detector.scan([text])  # warm up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.scan([text])
        timings.append((time.perf_counter() - start) * 1000)
    return timings, fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50, help="scans per input for the latency figures")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    detector = SensitivityDetector.build(patterns=[LAB_PATTERN])
    print(f"detector: {len(detector.rules)} rules (built-in + lab pattern {LAB_PATTERN[1]})\n")
    for name in ("dev", "holdout", "blind_holdout"):
        report_quality(detector, name, load_cases(f"{name}.jsonl"))

    inputs = {
        "short prompt": SHORT_PROMPT,
        "clinical note": clinical_note(2_000),
        "pasted table": pasted_table(100_000, args.seed),
    }
    print(f"scan latency, {args.repeats} repeats")
    print(f"{'input':<16}{'chars':>9}{'median ms':>12}{'p95 ms':>10}  fired")
    for label, text in inputs.items():
        timings, fired = measure(detector, text, args.repeats)
        print(
            f"{label:<16}{len(text):>9,}{statistics.median(timings):>12.2f}{percentile(timings, 0.95):>10.2f}"
            f"  {', '.join(fired) or '-'}"
        )


if __name__ == "__main__":
    main()
