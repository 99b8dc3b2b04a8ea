"""The detector's layers: identifiers with checksums, patient records, person names, and failing closed.

The labelled set ``tests/data/sensitivity/layers.jsonl`` (written for the project: nursing notes in
shorthand with surrogate names, ID and customer sentences, one patient's lab rows; hard negatives from
abstracts with cohort statistics to VCFs and code) is held to floors per category. When the shared
evaluation set sits beside the checkout (``../shared/eval/governance_dev.jsonl``, read in place,
never copied) the issue's targets are checked on it too.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from biorouter import metrics
from biorouter.governance import people
from biorouter.governance.identifiers import iban_valid, luhn_valid
from biorouter.governance.records import record_rules
from biorouter.governance.sensitivity import UNAVAILABLE, SensitivityDetector
from biorouter.routing.profiles import Governance

from ..conftest import ROOT

DATA = Path(__file__).resolve().parents[1] / "data" / "sensitivity"
SHARED = ROOT.parent / "shared" / "eval" / "governance_dev.jsonl"
HARD_NEGATIVES = (
    "abstract_cohort",
    "samplesheet",
    "tool_log",
    "pipeline_docs",
    "vcf",
    "code",
    "analysis_question",
    "vignette",
)


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def detector() -> SensitivityDetector:
    return SensitivityDetector.build()


# --- checksums ------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["4539148803436467", "5425233430109903", "371449635398431", "6011111111111117"])
def test_luhn_accepts_card_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4539148803436468", "1234567812345678", "5425233430109904"])
def test_luhn_rejects_a_changed_digit(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "NL91ABNA0417164300"])
def test_iban_checksum_accepts_real_shapes(iban: str) -> None:
    assert iban_valid(iban)


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 01", "GB82WEST1234569876543", "XX00ABCD1234567890"])
def test_iban_checksum_rejects_wrong_digits_or_length(iban: str) -> None:
    assert not iban_valid(iban)


def test_a_long_number_that_fails_luhn_without_a_card_cue_is_not_a_card(detector: SensitivityDetector) -> None:
    assert "card_number" not in detector.scan(["The run produced 4539148803436468 bases in total."])
    assert "card_number" in detector.scan(["The run produced 4539148803436467 bases in total."])


def test_genomic_numbers_are_not_identifiers(detector: SensitivityDetector) -> None:
    vcf = "chr2\t179446218\t.\tC\tT\t812.1\tPASS\tDP=140;AF=0.48\tGT:AD\t0/1:72,68\n" * 40
    counts = "gene\t" + "\t".join(str(1_000_000_000_000 + 7 * i) for i in range(30))
    assert detector.scan([vcf, counts]) == ()


# --- records and people -------------------------------------------------------------------------


def test_a_note_without_any_name_is_a_patient_record() -> None:
    note = (
        "overnight: pt slept well, vss, afebrile. resp: sats 96% on 2l nc, lungs clear. "
        "gi: tolerating po, +bm. will cont to monitor i/o and wean o2 as tolerated."
    )
    assert record_rules(note) == ("record:clinical_note",)


def test_a_cohort_abstract_is_not_a_record() -> None:
    abstract = (
        "Methods: we enrolled 310 patients with sepsis; mean age 64 years. Results: mortality was 21% (95% CI "
        "17-25); patients who received early antibiotics had lower odds of death (odds ratio 0.71, p = 0.02)."
    )
    assert record_rules(abstract) == ()


def test_stricter_record_cues_flag_shorter_notes() -> None:
    short = "pt resting comfortably in bed with no complaints, vss. will cont to monitor closely."
    assert SensitivityDetector.build(record_cues=2, disabled=["person:name"]).scan([short]) == ("record:clinical_note",)
    assert SensitivityDetector.build(record_cues=4, disabled=["person:name"]).scan([short]) == ()


def test_a_name_near_a_personal_cue_is_found_and_code_is_not_read(detector: SensitivityDetector) -> None:
    assert detector.scan(["Could my sister Ingrid Halvorsen pick up the test results on Friday?"]) == ("person:name",)
    code = "def greet(user):\n    name = 'Ingrid Halvorsen'\n    return f'Hello {name}'\n\nprint(greet(None))\n"
    assert detector.scan([code]) == ()


def test_eponyms_are_not_people(detector: SensitivityDetector) -> None:
    assert detector.scan(["Her Barthel index improved, and Kaplan-Meier curves are in figure 2."]) == ()


# --- failing closed -------------------------------------------------------------------------------


@pytest.fixture
def ner_unloadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(people, "MODEL_PACKAGE", "biorouter_no_such_spacy_model")
    people.reset()
    yield
    monkeypatch.undo()
    people.reset()


def _unavailable_count(layer: str) -> float:
    return metrics.REGISTRY.get_sample_value("biorouter_detector_unavailable_total", {"layer": layer}) or 0.0


def test_an_unloadable_ner_model_keeps_requests_that_needed_it_local(
    ner_unloadable: None, caplog: pytest.LogCaptureFixture
) -> None:
    detector = SensitivityDetector.build()
    before = _unavailable_count("people")
    with caplog.at_level(logging.WARNING, logger="biorouter.sensitivity"):
        fired = detector.scan(["Could my sister Ingrid Halvorsen pick up the test results on Friday?"])
    assert fired == (UNAVAILABLE,)
    assert _unavailable_count("people") == before + 1
    assert any("kept local" in record.getMessage() for record in caplog.records)
    assert not detector.warm()


def test_an_unloadable_ner_model_does_not_touch_text_it_would_not_read(ner_unloadable: None) -> None:
    detector = SensitivityDetector.build()
    vcf = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchr1\t12345\t.\tA\tG\n"
    assert detector.scan([vcf]) == ()
    assert detector.scan(["MRN 00719342, admitted with DKA"]) == ("medical_record_number",)


def test_a_failing_layer_is_reported_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> tuple[str, ...]:
        raise RuntimeError("boom")

    monkeypatch.setattr("biorouter.governance.records.record_rules", broken)
    assert UNAVAILABLE in SensitivityDetector.build().scan(["What does FASTQ quality encoding mean?"])


# --- profile --------------------------------------------------------------------------------------


def test_the_default_profile_governance_protects_and_says_so() -> None:
    governance = Governance()
    assert governance.weakened() == []
    assert "person names" in governance.describe()
    assert "patient records" in governance.describe()


def test_switching_a_layer_off_is_explained_as_weaker() -> None:
    governance = Governance(disabled_rules=("person:name",), record_cues=5)
    weakened = " ".join(governance.weakened())
    assert "person names" in weakened
    assert "5 kinds" in weakened
    assert "person:name" not in governance.describe().split(" - weakened")[0]


# --- labelled sets --------------------------------------------------------------------------------


def rates(detector: SensitivityDetector, cases: list[dict[str, Any]], key: str) -> dict[tuple[str, bool], float]:
    flagged: dict[tuple[str, bool], list[bool]] = defaultdict(list)
    for case in cases:
        flagged[(case[key], bool(case["sensitive"]))].append(bool(detector.scan([case["text"]])))
    return {group: sum(flags) / len(flags) for group, flags in flagged.items()}


@pytest.mark.parametrize("name", ["layers.jsonl", "layers_check.jsonl"])
def test_own_layers_sets_recall_and_hard_negatives(detector: SensitivityDetector, name: str) -> None:
    by_group = rates(detector, load(DATA / name), "category")
    for (category, sensitive), rate in by_group.items():
        if sensitive:
            assert rate >= 0.9, f"recall on {category} fell to {rate:.2f}"
        elif category in HARD_NEGATIVES:
            assert rate < 0.1, f"{category} flagged at {rate:.2f}"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/eval/governance_dev.jsonl is not beside this checkout")
def test_shared_set_meets_the_issue_targets(detector: SensitivityDetector) -> None:
    cases = load(SHARED)
    flagged = [(bool(case["sensitive"]), bool(detector.scan([case["text"]]))) for case in cases]
    tp = sum(1 for label, hit in flagged if label and hit)
    fp = sum(1 for label, hit in flagged if not label and hit)
    positives = sum(1 for label, _ in flagged if label)
    assert tp / positives >= 0.97
    assert tp / (tp + fp) >= 0.92


@pytest.mark.parametrize(
    "text",
    [
        "Please post the consent copy to Via della Scala 12, Firenze.",
        "I moved to Rua dos Anjos 5 last month, update my file.",
        "Courier the kit to 14 Calle de la Paz, Sevilla.",
    ],
)
def test_street_names_with_lower_case_particles_are_addresses(detector: SensitivityDetector, text: str) -> None:
    assert "postal_address" in detector.scan([text])


def test_a_method_name_with_a_particle_is_not_an_address(detector: SensitivityDetector) -> None:
    assert detector.scan(["Run the de novo assembly via de Bruijn graphs 12 times with different k."]) == ()


def test_names_inside_code_pasted_into_a_question_are_not_people(detector: SensitivityDetector) -> None:
    question = (
        "Why does this print nothing? \"def welcome(user):\\n    return 'Welcome ' + user\\n"
        "welcome('Margarethe')\" I call it from my notebook and nothing shows."
    )
    assert detector.scan([question.replace("\\n", "\n")]) == ()
    assert detector.scan(["Accompanied by her brother (Dariusz), who will call back tonight."]) == ("person:name",)


def test_only_texts_the_ner_model_would_read_are_costly(detector: SensitivityDetector) -> None:
    assert detector.costly(["Could my sister Ingrid Halvorsen pick up the test results on Friday?"])
    assert not detector.costly(["write a python function that reverses a list", ""])
    assert not SensitivityDetector.build(disabled=["person:name"]).costly(["Could my sister Ingrid come?"])


@pytest.mark.parametrize(
    ("name", "recall", "precision"),
    [
        # the set the multilingual record cues and lab-row layouts were written against (0.30 recall before)
        ("records_check.jsonl", 0.90, 0.93),
        # written by a second author, never read item by item: 0.51 recall before, 0.82 after
        ("records_holdout.jsonl", 0.80, 0.88),
    ],
)
def test_records_in_ten_languages_and_many_layouts(
    detector: SensitivityDetector, name: str, recall: float, precision: float
) -> None:
    cases = load(DATA / name)
    flagged = [(bool(case["sensitive"]), bool(detector.scan([case["text"]]))) for case in cases]
    tp = sum(1 for label, hit in flagged if label and hit)
    fp = sum(1 for label, hit in flagged if not label and hit)
    assert tp / sum(1 for label, _ in flagged if label) >= recall
    assert tp / (tp + fp) >= precision
