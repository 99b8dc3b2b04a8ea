"""Every sensitive text of the shared evaluation set, through the real proxy, never reaches the cloud.

The texts are read in place from ``../shared/eval/governance_dev.jsonl`` (real nursing notes with
surrogate names, PII sentences; written outside the project, never copied in). Each is sent twice
while every local stand-in fails: with a task hint whose route starts at the cloud group
(``metadata.biorouter_task: orchestration``) and naming the cloud group as model. The cloud
stand-in's counters must stay at 0 for them; ordinary control requests sent the same two ways must
reach it, or the test would prove nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..conftest import ROOT
from ..governance_cases import CLOUD, FAULTS, fail_locals
from .test_proxy_governance import chat, post_all

SHARED = ROOT.parent / "shared" / "eval" / "governance_dev.jsonl"
CLOUD_TASK = "orchestration"  # the development profile's route for it starts at the cloud group
CONTROLS = [
    "Plan the steps of a pipeline that aligns paired-end reads, calls variants and annotates them.",
    "Break this analysis into steps: download GEO counts, normalise, cluster, then report marker genes.",
    "Design a Snakemake workflow that runs FastQC and MultiQC over every FASTQ in a folder.",
]

pytestmark = pytest.mark.skipif(
    not SHARED.exists(), reason="../shared/eval/governance_dev.jsonl is not beside this checkout (shared eval data)"
)


def shared_sensitive_texts() -> list[str]:
    rows = [json.loads(line) for line in SHARED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["text"] for row in rows if row["sensitive"]]


async def test_no_sensitive_text_of_the_shared_set_reaches_the_cloud_while_the_locals_fail(
    dev_stack: Any, clean_standins: Any
) -> None:
    texts = shared_sensitive_texts()
    assert len(texts) >= 50  # the whole set, not a sample
    fail_locals(clean_standins, FAULTS["errors"])

    hinted = [chat(text, metadata={"biorouter_task": CLOUD_TASK}) for text in texts]
    named = [chat(text, model=CLOUD) for text in texts]
    responses = await post_all(dev_stack, hinted + named)

    assert clean_standins[CLOUD].stats()["requests"] == 0
    leaked = [r.status_code for r in responses if r.status_code == 200]
    assert leaked == [], f"{len(leaked)} sensitive requests were answered with the local groups down"
    assert {r.status_code for r in responses} == {503}

    controls = [chat(text, metadata={"biorouter_task": CLOUD_TASK}) for text in CONTROLS]
    controls += [chat(text, model=CLOUD) for text in CONTROLS]
    control_responses = await post_all(dev_stack, controls)
    assert [r.status_code for r in control_responses] == [200] * len(controls), [
        r.text for r in control_responses if r.status_code != 200
    ]
    assert clean_standins[CLOUD].stats()["requests"] == len(controls)
