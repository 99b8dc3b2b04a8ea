"""Task accuracy figures the docs quote, measured as ``make eval`` does, written to ``docs/figures.json``.

Runs ``biorouter eval --json`` (the configured classifier, then ``--classifier lexical``) over the
external labelled prompts (``../shared/eval/routing_dev.jsonl``, read in place, never copied; left
out when absent), the project's held-out sets in ``tests/data/routing/`` and the pasted-then-asked
set built from them (``bench/pasted_set.py``), and records accuracy,
macro-F1 and group accuracy for each. About two to four minutes on 2 cores.

    .venv/bin/python bench/eval_figures.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import EVAL_DATA, ROOT
from figures import Figure, record
from pasted_set import write_pasted_set

SETS = {
    "external": (EVAL_DATA, "../shared/eval/routing_dev.jsonl (external, 257 prompts)"),
    "own": (ROOT / "tests/data/routing/own_holdout.jsonl", "tests/data/routing/own_holdout.jsonl"),
    "boundary": (ROOT / "tests/data/routing/boundary_holdout.jsonl", "tests/data/routing/boundary_holdout.jsonl"),
    "midlength": (ROOT / "tests/data/routing/midlength_holdout.jsonl", "tests/data/routing/midlength_holdout.jsonl"),
    "bioinfo": (ROOT / "tests/data/routing/bioinfo_holdout.jsonl", "tests/data/routing/bioinfo_holdout.jsonl"),
    # built on the fly by bench/pasted_set.py into a temporary file (main() fills the path in)
    "pasted": (
        Path("pasted.jsonl"),
        "own, boundary and safety held-out asks after 20-80 pasted lines (bench/pasted_set.py)",
    ),
}


def evaluate(data: Path, classifier: str | None) -> dict[str, float]:
    command = [sys.executable, "-m", "biorouter", "eval", "--data", str(data), "--json"]
    if classifier:
        command += ["--classifier", classifier]
    env = {**os.environ, "BIOROUTER_HOME": str(ROOT)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=900)
    report = json.loads(result.stdout)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "group": report["group_accuracy"]}


def main() -> None:
    figures: dict[str, Figure] = {}
    scratch = Path(tempfile.mkdtemp(prefix="biorouter-pasted-"))
    count = write_pasted_set(scratch / "pasted.jsonl")
    sets = {**SETS, "pasted": (scratch / "pasted.jsonl", f"{SETS['pasted'][1]}, {count} prompts")}
    for name, (path, data) in sets.items():
        if not path.exists():
            print(f"{path}: not found, {name} figures left as they were")
            continue
        for classifier, prefix in ((None, "classifier"), ("lexical", "lexical")):
            measured = evaluate(path, classifier)
            suffix = " (lexical fallback alone)" if classifier else ""
            source = "bench/eval_figures.py"
            figures[f"{prefix}.{name}.accuracy"] = Figure(
                text=f"{measured['accuracy']:.1%}", value=measured["accuracy"], data=data + suffix, source=source
            )
            figures[f"{prefix}.{name}.macro_f1"] = Figure(
                text=f"{measured['macro_f1']:.3f}", value=measured["macro_f1"], data=data + suffix, source=source
            )
            figures[f"{prefix}.{name}.group_accuracy"] = Figure(
                text=f"{measured['group']:.1%}", value=measured["group"], data=data + suffix, source=source
            )
    record(figures)


if __name__ == "__main__":
    main()
