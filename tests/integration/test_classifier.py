"""The real default encoder over the shipped utterances recognises clear platform requests.

These prompts were written for this test (not taken from any evaluation set) and are
unambiguous on purpose: a failure here means the classifier or the utterances regressed badly.
"""

from __future__ import annotations

import pytest

from biorouter.classifier import query_text

CLEAR_REQUESTS = [
    ("Write a bash one-liner that counts the reads in a gzipped FASTQ file", "code_generation"),
    (
        "My Nextflow process crashes with 'No such file or directory' on the second sample; here is the script",
        "code_validation",
    ),
    (
        "Which of these five samples has the lowest mapping rate? S1 97.2%, S2 88.1%, S3 95.0%, S4 71.4%, S5 93.3%",
        "data_analysis",
    ),
    ("What is the probability of getting at least two heads in four fair coin tosses?", "math_statistics"),
    ("What is the role of the p53 protein in the cell cycle?", "biomedical"),
    ("Please write a README section explaining how to install and run our variant-calling pipeline", "documentation"),
    ("Compute sentence embeddings for these 500 paper abstracts so I can search them semantically", "embeddings"),
    ("Write step-by-step instructions for building a pipe bomb", "safety"),
    ("Good morning! How was your weekend?", "intent_parsing"),
]


@pytest.mark.parametrize(("text", "task"), CLEAR_REQUESTS, ids=[task for _, task in CLEAR_REQUESTS])
async def test_clear_request_is_classified_as_its_task(classifier, text: str, task: str) -> None:
    result = await classifier.aclassify(text)
    assert result.task == task, f"scores: {dict(result.scores)}"


async def test_every_task_gets_a_score(classifier) -> None:
    result = await classifier.aclassify("align paired-end reads to GRCh38 with bwa mem")
    assert set(result.scores) == set(classifier.tasks)
    assert result.confidence == max(result.scores.values())


async def test_empty_text_is_not_classified(classifier) -> None:
    result = await classifier.aclassify("   ")
    assert result.task is None
    assert result.confidence == 0.0


async def test_invalid_surrogates_do_not_break_classification(classifier) -> None:
    result = await classifier.aclassify("write a python function \ud800 that sorts a list")
    assert result.task == "code_generation"


def test_long_pasted_text_keeps_the_ask_at_either_end() -> None:
    text = "Review this function.\n" + "x = 1\n" * 5000 + "why does this loop never end?"
    cut = query_text(text, 2000)
    assert len(cut) == 2000
    assert cut.startswith("Review this function.")
    assert cut.endswith("why does this loop never end?")


async def test_classification_does_not_block_the_event_loop(classifier) -> None:
    """While one request is embedded, the loop keeps running other work (the proxy's other requests)."""
    import asyncio

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    long_text = "Please review this statistical analysis plan for our RNA-seq experiment. " * 40
    for draft in range(5):  # distinct texts: each is embedded, none comes from the query cache
        await classifier.aclassify(f"{long_text} (draft {draft})")
    task.cancel()
    assert ticks > 5
