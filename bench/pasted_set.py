"""A labelled set for "long paste, then the question": the project's own held-out asks after pasted code or rows.

Real requests often paste 50-300 lines of code, a sample sheet or a log and ask about it in the
last line. No labelled set of ours has that shape (the external file has 8 such prompts), so this
one is built on the fly, never stored: every prompt of ``own_holdout``, ``boundary_holdout`` and
``safety_holdout`` (labelled by what they ask) goes after a pasted block, code and rows in turn,
20-80 lines, seeded. The label stays the question's: the boundary the profiles document is "decide
by what is asked". The pastes are built here from a few fixed lines (never from evaluation data).

    from pasted_set import write_pasted_set; write_pasted_set(path)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from common import ROOT

__all__ = ["SOURCES", "write_pasted_set"]

SOURCES = ("own_holdout.jsonl", "boundary_holdout.jsonl", "safety_holdout.jsonl")
CODE_LINES = (
    "    reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30 and not r.is_duplicate]\n",
    "2026-11-21 10:42:17 INFO  [bwa_mem] Processed 400000 reads in 31.2 CPU sec, 16.1 real sec\n",
    "    df = df.groupby(['sample', 'condition']).agg(counts=('reads', 'sum')).reset_index()\n",
    "Error in DESeqDataSetFromMatrix(countData = cts, colData = coldata, design = ~ condition)\n",
)


def _paste(rng: random.Random, kind: str) -> str:
    if kind == "code":
        return "```\n" + "".join(rng.choice(CODE_LINES) for _ in range(rng.randint(20, 80))) + "```\n"
    rows = "".join(f"S{row:03d}\tcase\t{rng.randint(10, 99)}M\tlane{row % 4}\n" for row in range(rng.randint(20, 60)))
    return "sample\tcondition\treads\tlane\n" + rows


def write_pasted_set(path: Path, seed: int = 5) -> int:
    """Write the set to ``path`` (JSON Lines, with ``source``); how many prompts."""
    rng = random.Random(seed)
    lines = []
    for name in SOURCES:
        for line in (ROOT / "tests/data/routing" / name).read_text(encoding="utf-8").splitlines():
            example = json.loads(line)
            kind = "code" if len(lines) % 2 else "table"
            text = _paste(rng, kind) + example["text"]
            lines.append(json.dumps({"text": text, "label": example["label"], "source": f"{name} after {kind}"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)
