"""One patient's results as rows: lab values, vital signs, home readings, in any common layout or language.

People paste their own or a relative's results as a patient portal shows them ("Hemoglobin 10.9
g/dL Low 12.0-16.0"), as a lab report prints them ("Kreatinin 0,94 mg/dl (0,50-0,90) H"), as a
table with dates down the side and analytes across the top, or as a diary of blood pressure or
glucose readings. Each row alone is harmless; three or more of them about one person are a health
record. A row is a line with a measured value: an analyte or vital-sign name (English, German,
French, Spanish, Italian, Dutch, Portuguese, Swedish, Danish, Polish) and a number that is not
part of a reference range, with a unit, a flag, a date or a time beside it; or a dated line of a
table whose header names the analytes; or a reading such as a blood pressure (148/92) on a dated
line.

What looks the same but is not one person's record, and is left alone: reference-range tables
(ranges, no measured value), cohort and trial summaries (means, SD, n=, p-values), sample sheets
and sequencing QC tables (sample columns), and analyzer QC or calibration logs (control lots,
targets, accept/reject). Text is case-folded by the caller.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate
from typing import Final

from biorouter.governance.prefilter import Prefiltered

__all__ = ["about_many_or_an_instrument", "is_lab_results"]

MIN_ROWS: Final = 3

_ANALYTES = (
    # English and common abbreviations
    r"h(?:a)?emoglobin|hgb|hb|hct|ha?ematocrit|wbc|rbc|plt|platelets?(?:\s+count)?|neut(?:rophils)?|lymph(?:ocytes)?|"
    r"mcv|mch|mchc|rdw|sodium|na\+?|potassium|k\+?|chloride|cl|bicarb(?:onate)?|hco3|urea|bun|creat(?:inine)?|cr|"
    r"egfr|gfr|glucose|gluc|bgl|blood\s+sugar|sugar|hba1c|a1c|cholesterol|ldl|hdl|triglycerides|alt|ast|alp|ggt|"
    r"bilirubin(?:\s+total)?|tbili|albumin|protein|crp|esr|inr|pt|ptt|aptt|troponin|trop|lactate|tsh|ft4|ft3|"
    r"free\s+t4|pth|ferritin|iron|vitamin\s+(?:b12|d)|b12|folate|ck|ldh|lipase|amylase|magnesium|mg|phosph(?:ate|orus)|"
    r"phos|calcium|ca|psa|cea|ca-?125|bnp|nt-?probnp|osm(?:olality)?|uric\s+acid|d-?dimer|fibrinogen|"
    # German
    r"hämoglobin|hämatokrit|leukozyten|erythrozyten|thrombozyten|kreatinin|harnstoff|natrium|kalium|glukose|"
    r"blutzucker|cholesterin|triglyzeride|gpt|got|gamma-?gt|bilirubin|eisen|"
    # French
    r"hémoglobine|hématocrite|leucocytes|plaquettes|créatinine|urée|glycémie|natrémie|kaliémie|cholestérol|"
    r"bilirubine|ferritine|vgm|"
    # Spanish, Italian, Portuguese
    r"hemoglobina|hematocrito|leucocitos|plaquetas|creatinina|glucosa|sodio|potasio|colesterol|ferritina|"
    r"bilirrubina|triglicéridos|emoglobina|globuli\s+bianchi|piastrine|glicemia|potassio|azotemia|colesterolo|"
    r"leucócitos|neutrófilos|glicose|sódio|potássio|ureia|"
    # Dutch, Swedish, Danish, Polish
    r"hemoglobine|leukocyten|trombocyten|kreatinine|ureum|lpk|tpk|evf|glukos|hæmoglobin|leukocytter|"
    r"trombocytter|karbamid|hemoglobina|leukocyty|płytki|kreatynina|glukoza|sód|potas|mocznik"
)
_VITALS = (
    r"bp|b/p|blood\s+pressure|rr|ta|pa|tension|tensión|pressione|blutdruck|bloeddruk|blodtryck|ciśnienie|"
    r"pulse|puls|hr|hf|fc|sats?|spo2|sao2|temp|weight|wt|gewicht|poids|peso|vikt|waga|peak\s+flow|pef"
)
_TOKEN: Final = re.compile(rf"(?<![\w-])(?:{_ANALYTES}|{_VITALS})(?![\w-])")
# Names that are also everyday words or codes elsewhere (NA for a missing value, PA, CA, K, temp, weight):
# they count only beside a unit or a flag ("Na 139 mmol/L"), never on a date alone, and never as a heading.
_WEAK: Final = frozenset(
    [
        "na",
        "na+",
        "k",
        "k+",
        "cl",
        "ca",
        "mg",
        "cr",
        "pt",
        "ph",
        "phos",
        "ck",
        "alt",
        "ast",
        "alp",
        "hr",
        "hf",
        "fc",
        "rr",
        "ta",
        "pa",
        "sat",
        "sats",
        "temp",
        "wt",
        "weight",
        "iron",
        "protein",
        "sugar",
        "pef",
        "tension",
        "pulse",
        "puls",
        "peso",
        "poids",
        "vikt",
        "waga",
        "gewicht",
    ]
)
_DATE: Final = re.compile(
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b|\b\d{1,2}/\d{1,2}\b(?!/)|"
    r"\b\d{1,2}\.\d{1,2}\.(?!\d)|\b(?:[01]?\d|2[0-3])[:h][0-5]\d\b|"
    r"\b\d{1,2}\.?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mär|mai|okt|dez|janv|févr|avr|juin|juil|"
    r"août|déc|ene|abr|ago|dic|gen|mag|giu|lug|set|ott|mei|okt|maj|sty|lut|kwi|cze|lip|sie|wrz|paź|lis|gru)[a-zé]*\b|"
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{4}\b|"
    r"\b(?:mon|tue|wed|thu|fri|sat|sun|mo|di|mi|do|fr|sa|so|lun|mar|mer|jeu|ven|sam|dim|lu|ma|me|gi|ve|sa|do)\b\.?\s*\d"
)
_RANGE: Final = re.compile(r"[<>≤≥]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*[-–—]\s*\d+(?:[.,]\d+)?|10\s*[\^*]\s*\d+")
_NUMBER: Final = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?(?![\w])")
_UNIT_OR_FLAG: Final = re.compile(
    r"(?:mg|g|mmol|µmol|umol|μmol|nmol|pmol|mu|miu|u|iu|ng|pg|µg|ug|meq|mosm|fl|%|mm|mmhg|bpm|kg|lbs?)\s*(?:/|\b)|"
    r"/(?:nl|l|dl|ml|µl|ul|hpf)\b|(?<![\w])(?:h|l|hh|ll|high|low|hoch|niedrig|haut|bas|alto|bajo|alta|baja|"
    r"hoog|laag|høj|lav|hög|låg|wysoki|niski)(?![\w])|[↑↓*]"
)
_BP_READING: Final = re.compile(r"(?<![\d/])\d{2,3}\s*/\s*\d{2,3}(?![\d/])")
# Sample sheets, cohorts, QC: the text speaks of many people or of an instrument, not of one person.
_NOT_ONE_PERSON: Final = re.compile(
    r"\b(?:sample(?:_id)?|subject_id|cohort|mean|sd|median|iqr|fastq|bam|cram|qc|quality\s+control|lot|"
    r"calibrat\w*|kalibr\w*|control\s+(?:low|high|level|material)|target\s*(?:[:(=]|\d)|accept(?:ed)?|"
    r"reject(?:ed)?|westgard|p\s*[<=]\s*0?[.,]\d|n\s*=\s*\d+|which\s+of\s+the\s+following|most\s+likely|"
    r"presents?\s+(?:with|to)|fallbeispiel|cas\s+clinique|caso\s+cl[ií]nico|multiple\s+choice|"
    r"umrechnung\w*|conversion|convert\w*|faktor|factor)\b|±"
)


# The first layout this layer read, kept as it was: a row that opens with a date or time and holds an
# analyte or vital sign and a value (a line of code or SQL that merely mentions a date and "hgb" does not
# open with the date), under a first line with no sample or cohort columns.
_DATE_FIRST_ROW: Final = re.compile(
    r"(?m:^[ \t>*|-]*(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|\d{1,2}/\d{1,2}|(?:[01]?\d|2[0-3]):[0-5]\d)\b"
    r"(?=[^\n]*\b(?:h(?:a)?emoglobin|hgb|hb|wbc|plt|platelets?|sodium|na|potassium|k|creatinine|creat|cr|bun|urea|"
    r"glucose|gluc|alt|ast|alp|bilirubin|tbili|albumin|crp|esr|inr|pt|ptt|aptt|troponin|trop|lactate|hba1c|"
    r"tsh|ferritin|egfr|ck|ldh|lipase|magnesium|mg|phosph(?:ate|orus)|calcium|ca|chloride|cl|bicarb(?:onate)?|"
    r"hco3|ph|pco2|po2|neut(?:rophils)?|lymph(?:ocytes)?|mcv|hct|psa|cea|ca-?125|bnp|"
    r"bp|pulse|hr|temp|sats?|spo2|weight|wt|peak\s+flow|pef|bgl|bm|sugar)\b|\b\d{2,3}/\d{2,3}\b)"
    r"[^\n]*\d[^\n]*$)"
)
_COLUMNS_NOT_ONE_PATIENT: Final = re.compile(
    r"(?:\b(?:sample|sample_id|subject_id|cohort|group|arm|n|mean|sd|median|iqr|fastq|bam|cram)\b)"
)


def _measured_value(line: str) -> bool:
    """A number in the line that is not a reference range, a limit, a unit's power or part of an analyte's name."""
    bare = _TOKEN.sub(" ", _RANGE.sub(" ", line))
    return _NUMBER.search(bare) is not None


def _strong(line: str) -> bool:
    """Whether the line names an analyte or vital that is not also an everyday word or code."""
    return any(match.group(0) not in _WEAK for match in _TOKEN.finditer(line))


def _result_row(line: str) -> bool:
    """An analyte or vital with a measured value and a unit, flag, date or time beside it; or a dated reading."""
    if _TOKEN.search(line) is not None and _measured_value(line):
        if _UNIT_OR_FLAG.search(line) is not None:
            return True
        if _DATE.search(line) is not None and _strong(line):
            return True
    return _BP_READING.search(line) is not None and _DATE.search(line) is not None


# The patterns read over a whole paste, behind an RE2 screen: a paste of code or logs is mostly
# proven free of them in one linear pass (answers unchanged; biorouter/governance/prefilter.py).
_TOKENS_IN_TEXT: Final = Prefiltered(_TOKEN)
_READINGS_IN_TEXT: Final = Prefiltered(_BP_READING)
_DATES_IN_TEXT: Final = Prefiltered(_DATE)
_DATE_FIRST_ROWS_IN_TEXT: Final = Prefiltered(_DATE_FIRST_ROW)
_NOT_ONE_PERSON_IN_TEXT: Final = Prefiltered(_NOT_ONE_PERSON)


def _line_numbers(pattern: Prefiltered, text: str, starts: list[int]) -> set[int]:
    """Indexes of the lines of ``text`` (starting at ``starts``) where ``pattern`` matches: one pass over the text."""
    return {bisect_right(starts, match.start()) - 1 for match in pattern.finditer(text)}


def _has_value(line: str) -> bool:
    """Whether a dated line holds a number besides its date, time and ranges."""
    return _NUMBER.search(_RANGE.sub(" ", _DATE.sub(" ", line))) is not None


def about_many_or_an_instrument(text: str) -> bool:
    """Whether case-folded ``text`` speaks of a cohort, samples, an analyzer's QC or a textbook case."""
    return _NOT_ONE_PERSON_IN_TEXT.search(text[:20000]) is not None


def is_lab_results(text: str) -> bool:
    """In case-folded ``text``, three or more rows of one person's measured results, and nothing of many people.

    Each pattern reads the text once; only the lines it points at are looked at more closely, so a
    10,000-character paste of code or logs costs a few passes, not a few per line.
    """
    head = text[:20000]
    if about_many_or_an_instrument(head):
        return False
    first_line = head.lstrip().split("\n", 1)[0]
    if len(_DATE_FIRST_ROWS_IN_TEXT.findall(head)) >= MIN_ROWS and _COLUMNS_NOT_ONE_PATIENT.search(first_line) is None:
        return True
    lines = head.split("\n")
    starts = list(accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    named = _line_numbers(_TOKENS_IN_TEXT, head, starts)
    pressures = _line_numbers(_READINGS_IN_TEXT, head, starts)  # a diary may name nothing: "Mon 06 May 07:10 148/92"
    if not named and len(pressures) < MIN_ROWS:
        return False
    dated = _line_numbers(_DATES_IN_TEXT, head, starts)
    readings = pressures & dated
    rows = set(readings)
    for index in sorted(named - rows):  # stop at the third row: a long note has dozens
        if len(rows) >= MIN_ROWS:
            break
        if _result_row(lines[index]):
            rows.add(index)
    if len(rows) < MIN_ROWS:
        # a table or diary: a heading naming what is measured, then dated lines of values
        valued = {index for index in dated if _has_value(lines[index])}
        for index in sorted(i for i in named if _strong(lines[i])):
            below = {row for row in valued if index < row <= index + 40}
            if len(below) >= MIN_ROWS:
                rows |= below
                break
    if len(rows) < MIN_ROWS:
        return False
    return bool(dated) or _UNIT_OR_FLAG.search(head) is not None
