"""The request batches and fault states both governance suites (Python API and proxy) run."""

from __future__ import annotations

from typing import Any

CLOUD = "deepseek-v3"
LOCAL_GROUPS = ("t4-bio", "t4-coder", "t4-embeddings", "t4-generalist", "t4-math", "t4-safety")
REQUEST_TIMEOUT_S = 1.0

# Local-only for different reasons: a local-only task, identifiers the built-in rules know, the
# lab's own sample-ID pattern from the profile. Most would go to the cloud on failure otherwise.
SENSITIVE = [
    "What is the function of the BRCA2 protein in homologous recombination repair?",
    "Write a python function that parses the lab results for MRN: 00482913 from our HL7 export",
    "Plot the HbA1c trend for Jane Okafor, DOB 12/03/1971, from these values: 7.9, 7.2, 6.8",
    "Why did sample SMP-118204 fail QC in last week's sequencing run? Suggest what to check.",
    "Draft a short reminder to the participant at jane.okafor@gmail.com about her follow-up visit",
    "Summarise the discharge letter for Mrs Svetlana Ivanova, admitted with community-acquired pneumonia",
]
# Not sensitive, on routes whose chains end in the cloud group (task hints make the routes certain).
ORDINARY = [
    ("write a python function that reverses the order of words in a sentence", "code_generation"),
    ("Write the README section that explains how to install the pipeline with conda", "documentation"),
    ("Summarise the distribution of read counts per sample in this table", "data_analysis"),
]

FAULTS: dict[str, dict[str, Any]] = {
    "healthy": {},
    "errors": {"error_rate": 1.0, "status": 500},
    "timeouts": {"latency_ms": 4000},
    "down": {"down": True},
}


def fail_locals(fleet: Any, fault: dict[str, Any]) -> None:
    for name in LOCAL_GROUPS:
        fleet[name].set_fault(**fault)
