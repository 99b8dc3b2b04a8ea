"""The sensitivity detector: which requests carry patient or sample identifiers, and which do not.

Three kinds of test. The labelled dev corpus (``tests/data/sensitivity/dev.jsonl``) is checked case
by case; cases the rules miss today are listed by line as strict xfails, so a fix shows up as an
XPASS failure and the list shrinks. The holdout corpus is never tuned on: only its precision and
recall are checked, as a regression floor. Hand-written cases pin the contract: rule names, never
matched text; disabled rules; profile patterns with their time limit; near-misses from biology;
identifiers anywhere in a conversation.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import regex
from pydantic import ValidationError

from biorouter.governance.request_view import view_request
from biorouter.governance.sensitivity import (
    BUILTIN_RULE_NAMES,
    BUILTIN_RULES,
    LAYER_RULE_NAMES,
    PATTERN_TIMEOUT_S,
    SensitivityDetector,
    SensitivityRule,
    compile_pattern,
)
from biorouter.routing.profiles import Governance, Profile, SensitivePattern

DATA = Path(__file__).resolve().parents[1] / "data" / "sensitivity"

# The lab's sample-ID format, as its profile declares it.
LAB_PATTERN = ("lab_sample_id", r"\bSMP-\d{6}(?!\d)", False)

# Dev cases the rules get wrong today, by line number, with why. A fix turns them into XPASS failures.
KNOWN_DEV_MISSES: dict[int, str] = {}

CATASTROPHIC_PATTERN = r"(a|aa)+$"  # exponential backtracking on a run of a's that does not end the text
CATASTROPHIC_INPUT = "a" * 60 + "!"


def load_cases(name: str) -> list[tuple[int, dict[str, Any]]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [(number, json.loads(line)) for number, line in enumerate(lines, start=1) if line.strip()]


def dev_params() -> list[Any]:
    params = []
    for number, case in load_cases("dev.jsonl"):
        marks = []
        if number in KNOWN_DEV_MISSES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DEV_MISSES[number]))
        params.append(pytest.param(case, id=f"{case['category']}-line{number}", marks=marks))
    return params


@pytest.fixture(scope="module")
def detector() -> SensitivityDetector:
    return SensitivityDetector.build(patterns=[LAB_PATTERN])


# --- labelled corpora ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", dev_params())
def test_dev_case_is_sensitive_exactly_when_a_rule_fires(detector: SensitivityDetector, case: dict[str, Any]) -> None:
    fired = detector.scan([case["text"]])
    if case["sensitive"]:
        assert fired, "an identifier went undetected"
    else:
        assert fired == (), f"false positive from {fired}"


def test_known_dev_misses_name_real_sensitive_lines() -> None:
    cases = dict(load_cases("dev.jsonl"))
    assert all(cases[number]["sensitive"] for number in KNOWN_DEV_MISSES)


def test_holdout_precision_and_recall_stay_above_the_floor(detector: SensitivityDetector) -> None:
    cases = [case for _, case in load_cases("holdout.jsonl")]
    tp = fp = fn = tn = 0
    for case in cases:
        fired = bool(detector.scan([case["text"]]))
        if case["sensitive"]:
            tp, fn = (tp + 1, fn) if fired else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if fired else (fp, tn + 1)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"holdout: n={len(cases)} precision={precision:.3f} recall={recall:.3f} tp={tp} fp={fp} fn={fn} tn={tn}")
    assert precision >= 0.95
    assert recall >= 0.75


# --- built-in rules: names, never text ----------------------------------------------------------

# One realistic example per built-in rule name, and the identifier in it.
BUILTIN_EXAMPLES: dict[str, tuple[str, str]] = {
    "medical_record_number": (
        "Draft a discharge summary: MRN 00719342, admitted with DKA, pH 7.12 on arrival, now eating.",
        "00719342",
    ),
    "identifier_column": (
        "Merge these two exports on the id:\npatient_id,hb,plt\nP-10293,98,140\nP-10311,121,212",
        "P-10293",
    ),
    "health_record_message": (
        "Why does the parser reject this?\nMSH|^~\\&|LAB|HOSP|||202403121030||ORU^R01|0001|P|2.5\n"
        "PID|1||884213^^^HOSP^MR||NOVAK^JANA||19790312|F",
        "884213",
    ),
    "date_of_birth": ("DOB 04/11/1962 — is she eligible for the over-60 screening arm?", "04/11/1962"),
    "patient_name": (
        "Patient Rosa Delgado presented with new-onset focal seizures; what should the epilepsy panel cover?",
        "Rosa Delgado",
    ),
    "phone_number": ("Call the participant back on (312) 555-0148 to rebook the fasting draw.", "555-0148"),
    "email_address": ("Send the recontact letter to k.osei.home@gmail.com, gently worded.", "k.osei.home@gmail.com"),
    "postal_address": ("Courier the saliva kit to 42 Wellington Road, Manchester M14 6ET.", "Wellington Road"),
    "national_id": ("SSN 529-41-7786 is on the pre-authorisation form for the panel.", "529-41-7786"),
    "card_number": ("Why was my card 4539 1488 0343 6467 declined at the pharmacy?", "4539 1488 0343 6467"),
    "iban": ("Refund the deposit to DE89 3704 0044 0532 0130 00 please.", "DE89 3704 0044 0532 0130 00"),
    "identity_document": ("My passport number is X4821937, do I need it for the trial visit?", "X4821937"),
    "tax_id": ("The reimbursement form asks for the ITIN 912-78-4410; where does it go?", "912-78-4410"),
    "bank_account": ("Pay the travel grant into account no. 40817245, sort code 20-00-00.", "40817245"),
    "record:clinical_note": (
        "Summarise: pt resting comfortably overnight. VSS, afebrile. Resp: LS clear, sats 97% on 2L NC. "
        "GI: tolerating PO diet. Will cont to monitor.",
        "pt resting",
    ),
    "record:lab_results": (
        "Trend these for me:\n2024-03-01 creatinine 142 umol/L\n2024-03-02 creatinine 168 umol/L\n"
        "2024-03-03 creatinine 201 umol/L, potassium 5.9",
        "creatinine 142",
    ),
    "person:name": ("Hi Rosalind, could you resend the invoice for the tutoring sessions?", "Rosalind"),
}


def test_only_rules_without_the_texts_cue_words_are_skipped(detector: SensitivityDetector) -> None:
    # A scan asks only the rules a text's cue words make possible; asking every rule must find the same.
    texts = [case["text"] for path in sorted(DATA.glob("*.jsonl")) for _, case in load_cases(path.name)]
    assert len(texts) > 300
    for text in texts:
        lowered = text.casefold()
        cues = detector._cue_words.present(lowered)
        asked = {rule.name for rule in detector._worth_asking(cues) if rule.fires(text, lowered, cues)}
        every = {rule.name for rule in detector.rules if rule.fires(text, lowered)}
        assert asked == every, text[:80]


def test_every_builtin_rule_name_has_an_example() -> None:
    assert set(BUILTIN_EXAMPLES) == set(BUILTIN_RULE_NAMES)
    assert {rule.name for rule in BUILTIN_RULES} == set(BUILTIN_RULE_NAMES) - set(LAYER_RULE_NAMES)


@pytest.mark.parametrize(("rule", "example"), BUILTIN_EXAMPLES.items(), ids=list(BUILTIN_EXAMPLES))
def test_builtin_rule_fires_on_its_example_and_is_recorded_by_name(rule: str, example: tuple[str, str]) -> None:
    text, _ = example
    assert SensitivityDetector.build().scan([text]) == (rule,)


@pytest.mark.parametrize(("rule", "example"), BUILTIN_EXAMPLES.items(), ids=list(BUILTIN_EXAMPLES))
def test_matched_text_never_appears_in_the_result(rule: str, example: tuple[str, str]) -> None:
    text, identifier = example
    fired = SensitivityDetector.build().scan([text])
    assert fired
    assert all(identifier not in name for name in fired)
    assert identifier not in repr(fired)


def test_a_profile_pattern_is_recorded_as_pattern_and_its_name() -> None:
    fired = SensitivityDetector.build(patterns=[LAB_PATTERN]).scan(["why did SMP-118204 fail QC?"])
    assert fired == ("pattern:lab_sample_id",)
    assert "118204" not in repr(fired)


def test_each_rule_is_reported_once_in_rule_order() -> None:
    texts = ["SSN 529-41-7786", "MRN 00719342", "second MRN 00719343", "SSN 529-41-7787"]
    assert SensitivityDetector.build().scan(texts) == ("medical_record_number", "national_id")


@pytest.mark.parametrize(("rule", "example"), BUILTIN_EXAMPLES.items(), ids=list(BUILTIN_EXAMPLES))
def test_disabled_rule_does_not_fire(rule: str, example: tuple[str, str]) -> None:
    text, _ = example
    assert rule not in SensitivityDetector.build(disabled=[rule]).scan([text])


def test_disabling_a_rule_leaves_the_others_on() -> None:
    detector = SensitivityDetector.build(disabled=["email_address"])
    assert detector.scan(["k.osei.home@gmail.com", "MRN 00719342"]) == ("medical_record_number",)


def test_disabling_a_name_switches_off_every_rule_of_that_name() -> None:
    cues = [
        "Patient Rosa Delgado presented with seizures.",
        "Mr. Thompson has a potassium of 6.3 this morning.",
        "Maria Gonzalez, a 54-year-old woman, asks about statins.",
        "Summarise the discharge letter for Svetlana Ivanova for her GP.",
    ]
    assert SensitivityDetector.build().scan(cues) == ("patient_name",)
    # the people layer (NER) reads names too: both are switched off to silence names entirely
    assert SensitivityDetector.build(disabled=["patient_name"]).scan(cues) == ("person:name",)
    assert SensitivityDetector.build(disabled=["patient_name", "person:name"]).scan(cues) == ()


# --- profile patterns ---------------------------------------------------------------------------


def test_profile_pattern_with_ignore_case_matches_any_case() -> None:
    text = "rerun smp-220915 with the v2 capture kit"
    strict = SensitivityDetector.build(patterns=[("lab_sample_id", r"\bSMP-\d{6}(?!\d)", False)])
    relaxed = SensitivityDetector.build(patterns=[("lab_sample_id", r"\bSMP-\d{6}(?!\d)", True)])
    assert strict.scan([text]) == ()
    assert relaxed.scan([text]) == ("pattern:lab_sample_id",)


def test_lab_pattern_ignores_longer_digit_runs() -> None:
    assert SensitivityDetector.build(patterns=[LAB_PATTERN]).scan(["SMP-1182045 is a catalogue number"]) == ()


def test_crafted_input_really_exceeds_the_pattern_time_limit() -> None:
    # keeps the fail-closed test honest: this pattern cannot finish within the limit on this input
    with pytest.raises(TimeoutError):
        regex.compile(CATASTROPHIC_PATTERN, regex.VERSION1).search(CATASTROPHIC_INPUT, timeout=PATTERN_TIMEOUT_S * 4)


def test_catastrophic_profile_pattern_counts_as_a_match_and_returns_quickly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detector = SensitivityDetector.build(patterns=[("slow", CATASTROPHIC_PATTERN, False)])
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="biorouter.sensitivity"):
        fired = detector.scan([CATASTROPHIC_INPUT])
    elapsed = time.perf_counter() - start
    assert fired == ("pattern:slow",)
    assert elapsed < 3.0
    assert "timed out" in caplog.text
    assert CATASTROPHIC_INPUT not in caplog.text


def test_compile_pattern_accepts_a_usable_regex() -> None:
    assert compile_pattern(r"\bSMP-\d{6}(?!\d)") is None


def test_compile_pattern_rejects_an_invalid_regex() -> None:
    problem = compile_pattern(r"SMP-(\d{6}")
    assert problem is not None
    assert "not a valid regular expression" in problem


@pytest.mark.parametrize("pattern", [r"\d*", r"(SMP-\d{6})?", r"^", r"x|"])
def test_compile_pattern_rejects_a_regex_that_matches_the_empty_string(pattern: str) -> None:
    problem = compile_pattern(pattern)
    assert problem is not None
    assert "empty string" in problem


@pytest.mark.parametrize(
    ("regex_text", "message"),
    [(r"SMP-(\d{6}", "not a valid regular expression"), (r"\d*", "empty string")],
)
def test_sensitive_pattern_rejects_a_bad_regex_naming_the_field(regex_text: str, message: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        SensitivePattern(name="lab_sample_id", regex=regex_text)
    (error,) = excinfo.value.errors()
    assert error["loc"] == ("regex",)
    assert message in error["msg"]


def test_profile_with_a_bad_governance_regex_fails_naming_the_path() -> None:
    data = {
        "version": 1,
        "name": "x",
        "description": "A test profile.",
        "default_route": {"group": "t4-generalist"},
        "routes": {"biomedical": {"group": "t4-bio", "allow_cloud": False}},
        "governance": {"sensitive_patterns": [{"name": "lab_sample_id", "regex": r"SMP-(\d{6}"}]},
    }
    with pytest.raises(ValidationError) as excinfo:
        Profile.model_validate(data)
    (error,) = excinfo.value.errors()
    assert error["loc"] == ("governance", "sensitive_patterns", 0, "regex")
    assert "not a valid regular expression" in error["msg"]


def test_governance_builds_a_detector_with_its_patterns_and_disabled_rules() -> None:
    governance = Governance.model_validate(
        {
            "sensitive_patterns": [{"name": "lab_sample_id", "regex": r"\bsmp-\d{6}(?!\d)", "ignore_case": True}],
            "disabled_rules": ["email_address"],
        }
    )
    detector = governance.detector()
    assert detector.scan(["SMP-220915", "k.osei.home@gmail.com"]) == ("pattern:lab_sample_id",)


# --- near-misses from biology and code ----------------------------------------------------------

NEAR_MISSES = {
    "ensembl_gene_id": "ENSG00000141510 is TP53 — which transcript is canonical in Ensembl 110?",
    "dbsnp_rs_id": "Is rs1801133 (MTHFR C677T) still considered clinically actionable?",
    "chr_coordinates": "bcftools view -r chr7:140753336-140753336 calls.vcf.gz | grep -v '^#'",
    "iso_dates": "Runs from 2024-01-15 and 2024-02-03 differ in Q30; is it the reagent lot?",
    "et_al_citation": "Smith et al. 2019 reported a VAF cutoff of 2% — is that still standard?",
    "git_remote": "git clone git@github.com:biolab-org/variant-pipeline.git fails with publickey",
    "example_address": "Set MAIL_FROM=alerts@example.com in the .env for the pipeline notifications.",
    "deidentified_vignette": "A 45-year-old woman presents with fatigue and a malar rash; which antibodies first?",
    "lab_sample_lookalike": "SMP-12345 is the old five-digit format; SMPD1 encodes acid sphingomyelinase.",
}


@pytest.mark.parametrize("text", NEAR_MISSES.values(), ids=list(NEAR_MISSES))
def test_near_miss_does_not_fire(detector: SensitivityDetector, text: str) -> None:
    assert detector.scan([text]) == ()


# --- identifiers anywhere in a conversation -----------------------------------------------------

QUESTION = {"role": "user", "content": "What should the next step be?"}


def conversation(where: str) -> list[dict[str, Any]]:
    """A conversation whose only identifier sits in ``where``; the last user turn is harmless."""
    system = "You are a clinical genetics assistant."
    earlier = "Can you explain what a VUS is?"
    tool_result = "Coverage 98.1% at 20x; 3 variants called."
    arguments = json.dumps({"sample": "all", "min_depth": 20})
    if where == "system_prompt":
        system += " The current case is MRN 00719342."
    elif where == "earlier_user_turn":
        earlier = "Email the summary to k.osei.home@gmail.com afterwards. " + earlier
    elif where == "tool_result":
        tool_result = "Recontact number on file: (312) 555-0148. " + tool_result
    elif where == "tool_call_arguments":
        arguments = json.dumps({"sample": "SMP-220915", "min_depth": 20})
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": earlier},
        {"role": "assistant", "content": "A variant of uncertain significance is ..."},
        {"role": "user", "content": "Please pull the QC for the sample."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "fetch_qc", "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": tool_result}]},
        QUESTION,
    ]


@pytest.mark.parametrize(
    ("where", "rule"),
    [
        ("system_prompt", "medical_record_number"),
        ("earlier_user_turn", "email_address"),
        ("tool_result", "phone_number"),
        ("tool_call_arguments", "pattern:lab_sample_id"),
    ],
)
def test_identifier_anywhere_in_the_conversation_is_found(detector: SensitivityDetector, where: str, rule: str) -> None:
    view = view_request(conversation(where))
    assert view.text == QUESTION["content"]
    assert detector.scan([view.text]) == ()
    assert detector.scan(view.texts) == (rule,)


def test_conversation_without_identifiers_is_clean(detector: SensitivityDetector) -> None:
    assert detector.scan(view_request(conversation("nowhere")).texts) == ()


@pytest.mark.parametrize("name", ["development", "t4_hybrid", "h100_local", "l4_t4_combined", "cloud_only"])
def test_every_shipped_profile_carries_the_lab_pattern_these_corpora_assume(name: str) -> None:
    from biorouter.routing.profiles import load_profile

    profile = load_profile(DATA.parents[2] / "profiles" / f"{name}.yaml")
    patterns = {(p.name, p.regex, p.ignore_case) for p in profile.governance.sensitive_patterns}
    assert LAB_PATTERN in patterns
    assert profile.governance.detector().scan(["why did SMP-118204 fail QC?"]) == ("pattern:lab_sample_id",)


@pytest.mark.parametrize(
    "text",
    [
        "The Cancer Genome Atlas reported 500 samples with this fusion",
        "Mann Whitney presented no significant difference, so try a permutation test",
        "Kaplan Meier's results look odd when the follow-up is censored at 60 months",
        "Illumina NovaSeq reported low quality scores on lane 3",
        "Nextflow Tower reported the run as failed",
        "Random Forest was trained on the expression matrix",
    ],
)
def test_eponyms_tools_and_consortia_are_not_patients(text: str) -> None:
    assert SensitivityDetector.build().scan([text]) == ()


@pytest.mark.parametrize(
    "text",
    [
        "Thomas Bergström was admitted on Monday with sepsis",
        "Ana Lima presented with fever and a petechial rash",
        "Can you explain the VUS to Daniel O'Connor's parents?",
        "Rory McKay's MRI shows a 3 mm lesion",
        "Maria Gonzalez (54 F) with chest pain, troponin pending",
        "Name: Maria Lopez, diagnosis: asthma, inhaler review due",
        "pt J. Smith seen in clinic today, BP 150/95",
        "Requisition: Surname: ABERNATHY, test requested: Factor V Leiden",
    ],
)
def test_names_as_subjects_of_clinical_events_are_patients(text: str) -> None:
    assert SensitivityDetector.build().scan([text]) == ("patient_name",)


def test_a_fhir_human_name_is_a_health_record() -> None:
    fhir = '{"name": [{"family": "Okafor", "given": ["Jane"]}], "gender": "female"}'
    assert SensitivityDetector.build().scan([fhir]) == ("health_record_message",)


@pytest.mark.parametrize("text", ["first name: the column is empty in 3 rows", "Surname: the field is optional"])
def test_name_labels_without_a_name_do_not_fire(text: str) -> None:
    assert SensitivityDetector.build().scan([text]) == ()


PREFILTER_CASES = [
    "PATIENT_ID,Dx\n4471,T2DM\n",
    "SELECT * FROM visits WHERE Mrn = 3349912",
    '{"DOB": "1971-03-12"}',
    "First_Name\tWard\nAnna\t7B\n",
    "name,diagnosis\nJohn Smith,asthma\n",
    "reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30]\n" * 50,
]


def test_prefilter_words_never_hide_a_match() -> None:
    """A rule's ``needs`` only skips texts its regex cannot match: same verdicts with and without it."""
    import dataclasses

    texts = [case["text"] for _, case in load_cases("dev.jsonl")] + PREFILTER_CASES
    checked = 0
    for rule in BUILTIN_RULES:
        if not rule.needs:
            continue
        bare = dataclasses.replace(rule, needs=())
        for text in texts:
            assert rule.fires(text) == bare.fires(text), (rule.name, text[:80])
            checked += bare.fires(text)
    assert checked >= 5  # the cases above really exercise the rules that have a prefilter


def test_the_cue_index_finds_exactly_the_words_a_substring_test_finds() -> None:
    """One pass over the text must see every cue word the per-rule ``in`` tests saw: overlapping ones,
    words that are prefixes of others ("pass" in "passport"), words inside longer words."""
    from biorouter.governance.cue_index import CueIndex

    words = sorted({word for rule in BUILTIN_RULES for word in rule.needs})
    index = CueIndex(words)
    texts = [case["text"] for _, case in load_cases("dev.jsonl")] + PREFILTER_CASES
    texts += ["passport no. and dob", "mrnmrn", "the patient's passportnumber", "cc#cc no", "d.o.b.y/o"]
    seen = 0
    for text in texts:
        folded = text.casefold()
        expected = frozenset(word for word in words if word in folded)
        assert index.present(folded) == expected, text[:80]
        assert index.present_by_regex(folded) == expected, text[:80]  # the path without RE2
        seen += len(expected)
    assert seen >= 20  # the texts really hold cue words

    tiny = CueIndex(["ab", "abc", "bcd", "c"])
    assert tiny.present("xabcdx") == {"ab", "abc", "bcd", "c"}  # overlapping, nested and prefix words
    assert tiny.present_by_regex("xabcdx") == {"ab", "abc", "bcd", "c"}
    assert tiny.present("x\ud800abc") == {"ab", "abc", "c"}  # a text RE2 cannot encode: the regex answers
    assert CueIndex([]).present("anything") == frozenset()


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ('{"mrn": "00482913", "ward": "4B"}', True),  # a JSON key holding a value
        ("UPDATE visits SET dob = '1962-11-04' WHERE id = 7", True),  # an SQL column holding a value
        ("sample,patient_id,hb\nS1,P-10293,98", True),  # a CSV header naming the column, then a row
        ("name;diagnosis;ward\nA. Smith;COPD;7", True),  # names next to diagnoses
        ("sample,patient_id,hb", False),  # a header alone holds no values
        ("Which column holds the patient_id?\nThe second, usually.", False),  # prose, no delimited lines
        ("patient_id = row.get(key)", False),  # a variable, not a value
    ],
)
def test_identifier_column_shapes(text: str, fires: bool) -> None:
    """The three identifier-column rules (key = value, CSV header + row, names beside diagnoses)."""
    assert ("identifier_column" in SensitivityDetector.build().scan([text])) is fires


PASTED_LOG = "".join(f"2026-11-21 10:42:{i % 60:02d} INFO  [bwa_mem] Processed {i * 4000} reads\n" for i in range(120))
NOTE = "Pt is a 67 yo M admitted overnight. BP 142/88, HR 96, sats 94% on 2L NC. Wife at bedside. Will monitor. " * 12


def test_a_conversation_s_long_turns_are_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of a conversation re-sends its pasted turns; the second time they cost nothing."""
    detector = SensitivityDetector.build()
    first = detector.scan([PASTED_LOG, NOTE, "what went wrong?"])
    assert first == ("record:clinical_note",)

    scanned: list[int] = []
    cheap_layers = detector._cheap_layers

    def counting(text: str, fired: list[str]):  # type: ignore[no-untyped-def]
        scanned.append(len(text))
        return cheap_layers(text, fired)

    monkeypatch.setattr(detector, "_cheap_layers", counting)
    again = detector.scan([PASTED_LOG, NOTE, "what went wrong?", "and can you fix it?"])
    assert again == first  # the remembered note still keeps the request local
    assert scanned == [len("what went wrong?"), len("and can you fix it?")]  # only the short turns were read
    assert SensitivityDetector.build().scan([PASTED_LOG, NOTE]) == first  # and a fresh detector agrees


def test_a_layer_that_failed_on_a_text_is_asked_again_next_time() -> None:
    """A failure keeps that request local (detector:unavailable) but is never remembered for the text."""
    calls = {"n": 0}

    def flaky(match: object, text: str) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient")
        return False

    rule = SensitivityRule("pattern:flaky", "fails once", regex.compile(r"INFO"), confirm=flaky)
    detector = SensitivityDetector([*BUILTIN_RULES, rule])
    assert "detector:unavailable" in detector.scan([PASTED_LOG])
    assert detector.scan([PASTED_LOG]) == ()
    assert len(detector.verdicts) == 1  # the complete verdict, now remembered
