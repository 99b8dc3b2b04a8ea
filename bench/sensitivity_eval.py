"""Sensitivity detector quality and speed: recall, precision and false positives per kind; scan latency.

Prints figures; gates nothing (floors live in ``tests/unit/test_sensitivity.py`` and
``tests/unit/test_governance_layers.py``; absolute times depend on the machine and its load).

Quality, per labelled set: the project's own
``tests/data/sensitivity/{dev,holdout,layers,layers_check,blind_holdout,records_check,records_holdout}.jsonl``
(built-in rules plus the lab's sample-ID pattern) and, when it sits beside the checkout, the shared
``../shared/eval/governance_dev.jsonl`` (read in place, never copied). A text counts as flagged when
any rule fires; the report gives precision, recall, the confusion counts, per kind the recall
(sensitive kinds) or false-positive rate (the others), and which layer's rules fired.

Latency: p50 and p99 of ``scan`` over repeats, wall clock, for a short prompt, a ~1,500-character
nursing note and 10,000 characters each of notes, code, a VCF and pipeline docs built from the
project's own texts, plus a ~100,000-character pasted table (every rule reads all of it). The NER
model is loaded before timing. The machine's load average is printed beside the figures: on a shared
2-core machine other processes inflate wall-clock times. Run: ``python bench/sensitivity_eval.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from biorouter.governance.sensitivity import SensitivityDetector

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "sensitivity"
SHARED = ROOT.parent / "shared" / "eval" / "governance_dev.jsonl"
LAB_PATTERN = ("lab_sample_id", r"\bSMP-\d{6}(?!\d)", False)

SHORT_PROMPT = "Why does my STAR alignment of SMPD1 knockdown samples give only 41% uniquely mapped reads?"
TABLE_HEADER = "chrom,pos,ref,alt,gene,consequence,hgvs_p,gnomad_af,depth,qual,filter\n"
GENES = ("BRCA1", "BRCA2", "TP53", "PALB2", "ATM", "CHEK2", "MLH1", "MSH2", "APC", "PTEN")
CONSEQUENCES = ("missense_variant", "synonymous_variant", "stop_gained", "frameshift_variant", "splice_region")


def load_cases(name: str | Path) -> list[dict[str, Any]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    cases = [json.loads(line) for line in lines if line.strip()]
    for case in cases:  # the shared set names its column "kind", the project's sets "category"
        case.setdefault("category", case.get("kind", "-"))
    return cases


def layer_of(rule: str) -> str:
    if ":" not in rule:
        return "identifiers"
    return {"person": "people", "record": "records", "pattern": "lab pattern"}.get(rule.split(":")[0], rule)


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
    layers: dict[str, int] = defaultdict(int)
    for case in cases:
        fired = detector.scan([case["text"]])
        for layer in sorted({layer_of(rule) for rule in fired}):
            layers[layer] += 1
        flagged = bool(fired)
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
    print(f"  {'kind':<24}{'label':<11}{'n':>4}{'flagged':>9}{'recall':>9}{'FP rate':>9}")
    for (category, sensitive), flags in sorted(flagged_by_category.items(), key=lambda item: (not item[0][1], item[0])):
        hits = sum(flags)
        recall_cell = f"{hits / len(flags):>9.2f}" if sensitive else f"{'-':>9}"
        fp_cell = f"{'-':>9}" if sensitive else f"{hits / len(flags):>9.2f}"
        label = "sensitive" if sensitive else "clean"
        print(f"  {category:<24}{label:<11}{len(flags):>4}{hits:>9}{recall_cell}{fp_cell}")
    print(f"  texts flagged per layer (a text may count under several): {dict(sorted(layers.items()))}")
    print()


def own_texts(category: str) -> list[str]:
    return [case["text"] for case in load_cases("layers.jsonl") if case["category"] == category]


def sized(texts: list[str], size: int) -> str:
    """The texts one after another (repeated as needed), cut at ``size`` characters."""
    out = ""
    while len(out) < size:
        out += "\n\n".join(texts) + "\n\n"
    return out[:size]


def measure(detector: SensitivityDetector, text: str, repeats: int) -> tuple[list[float], tuple[str, ...]]:
    fired = detector.scan([text])  # warm up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.scan([text])
        timings.append((time.perf_counter() - start) * 1000)
    return timings, fired


def remembered(detector: SensitivityDetector, text: str, repeats: int) -> list[float]:
    """The same text again through a detector that keeps verdicts (a conversation's earlier turn)."""
    detector.scan([text])
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.scan([text])
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=100, help="scans per input for the latency figures")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    detector = SensitivityDetector.build(patterns=[LAB_PATTERN])
    print(f"detector: {len(detector.rules)} identifier rules (built-in + lab pattern {LAB_PATTERN[1]}), records and")
    print(f"people layers on; NER model loaded: {detector.warm()}\n")
    for name in (
        "dev.jsonl",
        "holdout.jsonl",
        "layers.jsonl",
        "layers_check.jsonl",
        "blind_holdout.jsonl",
        "records_check.jsonl",
        "records_holdout.jsonl",
    ):
        report_quality(detector, name, load_cases(name))
    if SHARED.exists():
        report_quality(detector, f"shared {SHARED.name} (read in place)", load_cases(SHARED))
    else:
        print(f"shared set not found at {SHARED}: skipped\n")

    notes = own_texts("nursing_note")
    inputs = {
        "short prompt": SHORT_PROMPT,
        "nursing note": sized(notes, 1_500),
        "10k notes": sized(notes, 10_000),
        "10k code": sized(own_texts("code"), 10_000),
        "10k VCF": sized(own_texts("vcf"), 10_000),
        "10k docs": sized(own_texts("pipeline_docs"), 10_000),
        "10k abstracts": sized(own_texts("abstract_cohort"), 10_000),
        "pasted table": pasted_table(100_000, args.seed),
    }
    load = os.getloadavg()[0]
    # every timed scan reads the whole text: verdicts are not kept (the proxy keeps them for long texts,
    # so a conversation's earlier turns cost the last column when they come again)
    first_time = SensitivityDetector.build(patterns=[LAB_PATTERN], remember=0)
    print(f"scan latency, {args.repeats} repeats, wall clock; load average {load:.1f} on {os.cpu_count()} cores")
    print(f"{'input':<16}{'chars':>9}{'p50 ms':>9}{'p99 ms':>9}{'again p50':>11}  fired")
    for label, text in inputs.items():
        timings, fired = measure(first_time, text, args.repeats)
        again = remembered(detector, text, args.repeats)
        print(
            f"{label:<16}{len(text):>9,}{statistics.median(timings):>9.2f}{percentile(timings, 0.99):>9.2f}"
            f"{statistics.median(again):>11.2f}  {', '.join(fired) or '-'}"
        )


if __name__ == "__main__":
    main()
