"""Folding pasted code, rows and logs so the question around them is what the classifier reads."""

from __future__ import annotations

import pytest

from biorouter.classify.ask import ask_text

CODE = "```python\n" + "".join(f"    counts_{i} = df.groupby(['sample'])['reads'].sum()\n" for i in range(30)) + "```\n"
TABLE = "sample\tcondition\treads\n" + "".join(f"S{i:03d}\tcase\t{40 + i}M\n" for i in range(40))
LOG = "".join(f"2026-11-21 10:42:{i:02d} INFO  [bwa_mem] Processed {i * 1000} reads\n" for i in range(30))
C_SOURCE = "".join(f"int counter_{i} = 0;\nvoid tick_{i}(void) {{\n  counter_{i}++;\n}}\n" for i in range(12))


def test_a_question_after_pasted_code_is_kept_and_the_code_folded() -> None:
    assert ask_text(f"{CODE}Why is this so slow on ten million rows?") == (
        "(code)\nWhy is this so slow on ten million rows?"
    )


def test_an_ask_before_the_paste_is_kept_too() -> None:
    assert ask_text(f"Which samples look like outliers?\n{TABLE}") == "Which samples look like outliers?\n(table)"


def test_logs_and_unfenced_c_are_recognised() -> None:
    assert ask_text(f"{LOG}Is the aligner stuck?") == "(log)\nIs the aligner stuck?"
    assert ask_text(f"find the issue:\n{C_SOURCE}") == "find the issue:\n(code)"


@pytest.mark.parametrize(
    "text",
    [
        "Align paired-end reads to GRCh38 with bwa-mem2 and sort the BAM.",  # short: read whole
        "def normalise(counts):\n" + '    """Scale each sample to counts per million."""\n' * 30,  # all code, no prose
        "We sequenced 48 samples per run on a NovaSeq and the batch came back yesterday. " * 8
        + "\nreads = load(path)\n",  # mostly prose: one code line does not fold anything
    ],
)
def test_text_that_is_not_mostly_paste_with_a_question_is_left_alone(text: str) -> None:
    assert ask_text(text) == text


def test_prose_with_brackets_and_numbers_stays_prose() -> None:
    prose = (
        "Compare the groups (case vs control) and tell me whether the 3 batches differ.\n" * 4
        + "Is a paired test right here, given 12 donors?\n"
    )
    assert ask_text(prose + TABLE).startswith(prose)


def test_prose_lines_that_open_with_a_keyword_stay_prose() -> None:
    """ "For", "If", "With" and "Return" open English sentences as often as Python blocks."""
    prose = (
        "For each sample we want the mapping rate and the duplication rate in one table.\n"
        "If the library is degraded, the 3' bias should show in the coverage profile.\n"
        "With the new kit the yield went up, but the insert size dropped by a third.\n"
        "Return the results to me as a short summary with the three worst samples named.\n"
    ) * 4
    assert ask_text(prose + TABLE).startswith(prose.rstrip("\n"))
    code = "for sample in samples:\n    if sample.rate < 0.8:\n        flag(sample)\n" * 20
    assert ask_text(f"{code}Why does this flag every sample?") == "(code)\nWhy does this flag every sample?"
