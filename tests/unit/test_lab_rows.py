"""One patient's results as rows, in the layouts people paste them, and what only looks like them."""

from __future__ import annotations

import pytest

from biorouter.governance.records import record_rules

PORTAL = """Results for: collected 14 Feb 2025 07:42
Component        Your Value   Flag   Standard Range
Hemoglobin       10.9 g/dL    Low    12.0-16.0
Hematocrit       33.1 %       Low    36.0-46.0
Platelet Count   412 K/uL            150-400"""
GERMAN_REPORT = """Ergebnisse vom 03.09.2024, nüchtern
Hämoglobin   13,8 g/dl   (12,0-15,4)
Leukozyten   11,9 /nl  H (3,9-10,2)
Kreatinin    0,94 mg/dl  (0,50-0,90) H"""
DATE_LAST = """K+ | 4.9 | mmol/L | 02/08/2024
K+ | 5.6 | mmol/L | 16/08/2024
Creatinine | 98 | umol/L | 02/08/2024"""
ANALYTES_ACROSS = """| Date       | Creat (umol/L) | eGFR | Hb (g/L) |
|------------|----------------|------|----------|
| 2023-11-02 | 214            | 24   | 104      |
| 2024-02-14 | 231            | 22   | 99       |
| 2024-05-20 | 248            | 20   | 97       |"""
BP_DIARY = """Mon 06 May 07:10 148/92
Mon 06 May 21:30 139/88
Tue 07 May 07:05 151/95"""


@pytest.mark.parametrize("rows", [PORTAL, GERMAN_REPORT, DATE_LAST, ANALYTES_ACROSS, BP_DIARY])
def test_one_person_s_results_are_a_record(rows: str) -> None:
    assert record_rules(rows) == ("record:lab_results",)


REFERENCE_TABLE = """Reference intervals for haemoglobin (g/dL), from the handbook:
cord blood: 13.5-20.0
2 weeks: 13.4-19.8
2 months: 9.4-13.0
6-12 years: 11.5-15.5"""
QC_LOG = """2025-03-04 06:02 QC L1 lot 48213 Creatinine 78 umol/L (target 80) ACCEPT
2025-03-04 06:02 QC L2 lot 48214 Creatinine 541 umol/L (target 550) ACCEPT
2025-03-04 06:05 QC L1 lot 48213 Potassium 4.02 mmol/L (target 4.00) ACCEPT"""
COHORT = """Baseline labs by arm (n = 212)
Hemoglobin 13.2 ± 1.4 g/dL vs 13.0 ± 1.5 g/dL
Creatinine 0.9 ± 0.2 mg/dL vs 0.9 ± 0.3 mg/dL
Glucose 101 ± 18 mg/dL vs 99 ± 17 mg/dL"""
MISSING_VALUES = """run_date,sample,na_count,depth
2024-03-01,S01,NA,31
2024-03-02,S02,NA,28
2024-03-03,S03,NA,35"""


@pytest.mark.parametrize("text", [REFERENCE_TABLE, QC_LOG, COHORT, MISSING_VALUES])
def test_tables_of_many_people_ranges_or_instruments_are_not(text: str) -> None:
    assert record_rules(text) == ()


def test_a_note_is_one_record_rule_and_a_profile_can_keep_only_the_lab_rule() -> None:
    note = (
        "Pat. 67 J., Bett 3, Nachtdienst. RR 86/50, HF 128, SpO2 84 %. Noradrenalin gestartet, Dienstarzt informiert. "
        "Sohn telefonisch informiert.\n03.12. 02:00 Kalium 5,9 mmol/l\n03.12. 04:00 Kalium 5,4 mmol/l\n"
        "03.12. 06:00 Kalium 4,8 mmol/l"
    )
    assert record_rules(note) == ("record:clinical_note",)
    assert record_rules(note, notes=False) == ("record:lab_results",)
    assert record_rules(note, notes=False, labs=False) == ()


@pytest.mark.parametrize(
    "rows",
    [
        "Maria Gonzalez,45,F,Hypertension,2023-04-01\nJohn Okafor,67,M,COPD,2023-04-03",
        "| Patient | Age | Diagnosis | Admitted |\n|---|---|---|---|\n| Li Wei | 71 | Stroke | 2024-01-12 |\n"
        "| Sarah Mitchell | 34 | Appendicitis | 2024-01-13 |",
        "Helga Brandt\t81\tw\tStation 4B\nTomasz Wrona\t63\tm\tStation 3A",
    ],
)
def test_a_patient_list_without_a_header_names_people(rows: str) -> None:
    """Rows of a name beside two of an age, a sex and a date are people, with or without a header."""
    from biorouter.governance.sensitivity import SensitivityDetector

    assert "patient_name" in SensitivityDetector.build(disabled=["person:name"]).scan([rows])


@pytest.mark.parametrize(
    "rows",
    [
        "New York,8336817,2019-07-01\nLos Angeles,3979576,2019-07-01",  # a place's population, not an age
        "Jane Austen,1775,Pride and Prejudice\nCharles Dickens,1812,Bleak House",  # authors and years
        "Alice Smith,Bob Jones,2021-01-01\nCarol White,Dan Brown,2021-02-01",  # names and one date only
    ],
)
def test_rows_of_names_without_ages_sexes_or_dates_of_a_person_are_not(rows: str) -> None:
    from biorouter.governance.sensitivity import SensitivityDetector

    assert SensitivityDetector.build(disabled=["person:name"]).scan([rows]) == ()
