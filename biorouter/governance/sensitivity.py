"""The sensitivity detector: does a request carry patient or sample identifiers, names or records?

A request that does is kept local whatever its task. The detector reads *every* text a request
carries (all turns, system prompts, tool results, tool-call arguments), not only the last user
turn the classifier judges: an identifier pasted three turns ago leaks just as well.

Built-in rules cover what the platform sees most: medical record numbers, dates of birth,
patient names in clinical context, phone numbers, e-mail and postal addresses, national IDs
(US SSN, UK NHS and National Insurance numbers, passports). A profile adds the lab's own
patterns (e.g. its sample-ID format) and may switch a built-in rule off; no code changes.

The rules aim at identifiers, not at biology: gene and variant names, accession numbers
(ENSG…, rs…, GSE…), genomic coordinates, ordinary dates and de-identified case vignettes must not
trip them. The result is a tuple of rule *names*; the matched text never leaves this module.

Profile regexes come from people who are not developers, so they run with a time limit: a
pattern that takes too long counts as a match (fail closed) rather than stalling the proxy.

The detector runs in layers, cheapest first (``biorouter.governance``): the identifier rules here
and in ``governance/identifiers.py`` (regex, bare rule names such as ``card_number``), then patient
records (``record:clinical_note``, ``record:lab_results``: note-structure cues), then people
(``person:name``: spaCy NER on short windows around personal cues), which runs only when nothing
cheaper fired. A layer that fails or cannot load adds ``detector:unavailable``: the request is kept
local, never scanned more weakly in silence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import regex

from biorouter import metrics
from biorouter.governance import people, records
from biorouter.governance.cue_index import CueIndex
from biorouter.governance.identifiers import IDENTIFIER_RULES, Match
from biorouter.governance.national_ids import NATIONAL_ID_RULES
from biorouter.governance.prefilter import Prefiltered, build_all
from biorouter.governance.verdicts import ChunkVerdict, ChunkVerdicts

__all__ = ["BUILTIN_RULES", "LAYER_RULE_NAMES", "UNAVAILABLE", "SensitivityDetector", "SensitivityRule"]

logger = logging.getLogger("biorouter.sensitivity")

# Seconds one profile pattern may spend on one request before it counts as a match.
PATTERN_TIMEOUT_S: Final = 0.25

_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"  # noqa: E501
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"  # 12/03/1971, 12.03.71
    r"|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}"  # 1984-07-22
    rf"|\d{{1,2}}[-/ ]{_MONTH}[-/ ]\d{{2,4}}"  # 07-Jun-1949
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}"  # 3 March 1958
    rf"|{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"  # March 3, 1958
)
# A personal name: two or three capitalised words ("Maria Gonzalez", "Anne-Marie O'Neil").
_NAME_WORD = r"(?:\p{Lu}['’]\p{Lu}\p{Ll}+|Ma?c\p{Lu}\p{Ll}+|\p{Lu}\p{Ll}+)(?:-\p{Lu}\p{Ll}+)?"  # O'Neil, McKay
_NAME = rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,2}}"
_SURNAME_FIRST = rf"{_NAME_WORD},\s*{_NAME_WORD}"  # "Kowalski, Anna"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx)\.?"
# Column and key names that hold direct identifiers in tables, JSON and SQL.
_ID_COLUMN = (
    r"(?:mrn|nhs_?(?:no|num|number)|patient_?(?:id|name)|date_?of_?birth|dob|birth_?date|ssn|"
    r"(?:full|first|last|sur|fore|given|family)_?name)"
)

# Capitalised words that follow "patient" or precede "et al." in headings and prose, not names.
_NOT_NAME_WORDS = """
    Age Analysis Baseline Care Characteristics Clinical Cohort Count Counts Criteria Data Database
    Demographics Details Disease Enrollment Factors Files File Flow Group Groups Health History ID IDs
    Identifier Information Inclusion Level List Management Metadata Name Names Number Numbers Outcome
    Outcomes Population Portal Privacy Profile Record Records Registry Reported Report Reports Safety
    Sample Samples Selection Status Study Summary Survival Table Tables The This These Those Type Types
    Unit Visit Visits With Without And Or Of In On For Is Are Was Were Has Have Level Levels Characteristics
    Derived Samples Cells Cell Tissue Tissues Gene Genes Protein Proteins Treatment Treatments Trial Trials
    Consent Forms Form Id Dataset Datasets Matrix Sheet Sheets Code Codes Model Models Score Scores
    Kaplan Meier Mann Whitney Hardy Weinberg Wilcoxon Fisher Pearson Spearman Kruskal Wallis Bonferroni
    Benjamini Hochberg Cox Student Bayes Markov Poisson Gauss Hodgkin Crohn Alzheimer Parkinson
    Huntington Turner Klinefelter Lynch Cushing Addison Graves Hashimoto Mendel Darwin Watson Crick
    Sanger Illumina Nanopore Nextflow Snakemake Galaxy Seurat Scanpy Ensembl Genome Atlas Cancer
"""
_NOT_NAMES: Final = frozenset(_NOT_NAME_WORDS.split())
_CLINICAL_CONTEXT = regex.compile(
    r"(?i)\b(?:patient|pt|diagnos\w*|present(?:ed|s|ing)|admi(?:tted|ssion)|discharg\w*|year[- ]old|"
    r"symptom\w*|treat(?:ed|ment)|prescri\w*|clinic\w*|hospital\w*|ward|history of|referr\w*|consult\w*|"
    r"biops\w*|tumou?r|therapy|medication|surgery|ICU|ED|GP|oncolog\w*|chemo\w*|follow[- ]up|scan|"
    r"blood|lab results|complain\w*|condition|care plan|nurse|physician|doctor|MRI|CT|EUS|surveillance|"
    r"variant|exome|genome|WES|WGS|counsell?ing|genetic|relapse|progress(?:ed|ion)|dose|mg|results?)\b"
)


_ID_COLUMN_NEEDS: Final = ("mrn", "nhs", "patient", "birth", "dob", "ssn", "name")  # every _ID_COLUMN spelling has one
_DELIMITERS: Final = (",", "\t", ";", "|")
_ROW_VALUE: Final = re.compile(r"[,\t;|][^\n]*\w")


def _header_with_a_row(match: Match, text: str) -> bool:
    """The identifier column name sits on a delimited header line, and the next line holds a delimited value."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    if end == -1 or not any(d in text[start:end] for d in _DELIMITERS):
        return False
    row_end = text.find("\n", end + 1)
    return _ROW_VALUE.search(text, end + 1, row_end if row_end != -1 else len(text)) is not None


_CELL_DELIMITER = regex.compile(r"\s*[,\t;|]\s*")
_SEX_CELL = regex.compile(
    r"(?i)(?:m|f|male|female|w|d|mann|frau|homme|femme|hombre|mujer|man|woman|kvinna|mand|kvinde)"
)
_DATE_CELL = regex.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


def _person_row(line: str) -> bool:
    """A delimited row beside a name that holds two of: an age (0-120), a sex, a date."""
    cells = [cell for cell in _CELL_DELIMITER.split(line.strip(" \t|")) if cell]
    kinds = set()
    for cell in cells[1:]:
        if cell.isdigit() and len(cell) <= 3 and int(cell) <= 120:
            kinds.add("age")
        elif _SEX_CELL.fullmatch(cell):
            kinds.add("sex")
        elif _DATE_CELL.fullmatch(cell):
            kinds.add("date")
    return len(kinds) >= 2


def _patient_rows(match: Match, text: str) -> bool:
    """Both matched rows are a person's: a name, then two of age, sex and date (a patient list without a header)."""
    first, _, second = match.group(0).partition("\n")
    return _names_ok(match, text) and _person_row(first) and _person_row(second.lstrip("\n"))


def _names_ok(match: Match, text: str) -> bool:
    """The captured name is made of name-like words (not a heading) and is not a citation."""
    name = match.group("name")
    words = regex.findall(r"\p{Lu}\p{Ll}+", name)
    if any(word in _NOT_NAMES for word in words):
        return False
    return not regex.match(r"\s*(?:et\s+al|and\s+colleagues|&)", text[match.end() :])


def _in_clinical_context(match: Match, text: str) -> bool:
    return _names_ok(match, text) and _CLINICAL_CONTEXT.search(text) is not None


def _nhs_checksum(match: Match, text: str) -> bool:
    """UK NHS numbers carry a modulus-11 check digit; random 10-digit numbers mostly fail it."""
    digits = [int(c) for c in match.group("nhs") if c.isdigit()]
    if len(digits) != 10:
        return False
    remainder = sum(d * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        check = 0
    return check != 10 and check == digits[9]


def _nhs_number(match: Match, text: str) -> bool:
    """A checksum-valid 10-digit number in a text that speaks of the NHS (count tables pass 1 in 11)."""
    return _nhs_checksum(match, text) and regex.search(r"(?i)\bNHS\b|\bnhs_", text) is not None


_PERSON_NEARBY = regex.compile(rf"{_TITLE}\s|\b{_NAME}\b|(?i:\b(?:patient|participant|proband|he|she)\b)")


def _said_of_a_person(match: Match, text: str) -> bool:
    """'born' about a named or referred-to person, not about pups, cultures or cell lines."""
    window = text[max(0, match.start() - 80) : match.end() + 80]
    return _PERSON_NEARBY.search(window) is not None


def _enough_phone_digits(match: Match, text: str) -> bool:
    """8-15 digits, and not the digit groups of an IBAN (DE89 3704 0044 …), which its own rule checks."""
    if regex.search(r"\b[A-Z]{2}\d{2}(?:\s\d{4})*\s?$", text[max(0, match.start() - 40) : match.start()]):
        return False
    return 8 <= sum(c.isdigit() for c in match.group(0)) <= 15


_RESERVED_EMAIL = regex.compile(
    r"(?i)^(?:git|noreply|no-reply|donotreply|do-not-reply)@|@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|"
    r"users\.noreply\.github\.com|localhost)$|\.(?:test|invalid|example|local)$"
)


def _personal_email(match: Match, text: str) -> bool:
    """Reserved documentation domains, bot addresses and ``user@host:path`` remotes are not people."""
    if _RESERVED_EMAIL.search(match.group(0)):
        return False
    before = text[max(0, match.start() - 8) : match.start()]
    if regex.search(r"(?i)\b(?:ssh|scp|sftp|rsync)\s+(?:-\S+\s+)*$", before):
        return False
    return text[match.end() : match.end() + 1] != ":"


@dataclass(frozen=True)
class SensitivityRule:
    """One named rule: a regex, and optionally a check on each match that must also hold."""

    name: str
    description: str
    pattern: regex.Pattern[str] | re.Pattern[str]
    confirm: Callable[[Match, str], bool] | None = None
    timeout: float | None = None  # seconds, for patterns written in profiles
    # Case-folded words of which every match contains at least one: a text without any of them
    # cannot match, and skipping the regex there saves most of the scan of long pasted code.
    needs: tuple[str, ...] = ()
    # An RE2 screen for a built-in pattern: texts it rejects cannot match (biorouter/governance/prefilter.py).
    screen: Prefiltered | None = field(default=None, compare=False, repr=False)

    def fires(self, text: str, lowered: str | None = None, cues: frozenset[str] | None = None) -> bool:
        """Whether the rule matches; a pattern that runs out of time counts as a match.

        ``lowered`` is ``text.casefold()`` (the folding ``(?i)`` uses), computed once per text by the caller;
        ``cues``, when given, are the ``needs`` words the text holds
        (:class:`~biorouter.governance.cue_index.CueIndex`).
        """
        if self.needs:
            if cues is not None:
                if cues.isdisjoint(self.needs):
                    return False
            else:
                folded = text.casefold() if lowered is None else lowered
                if not any(word in folded for word in self.needs):
                    return False
        start = 0 if self.screen is None else self.screen.first_possible(text)  # built-in: screened first
        if start is None:
            return False
        try:
            if isinstance(self.pattern, re.Pattern):  # a built-in rule on the faster stdlib engine
                matches: Iterable[Match] = self.pattern.finditer(text, start)
            else:  # concurrent: the GIL is released while matching, so the proxy's loop runs meanwhile
                matches = self.pattern.finditer(text, start, concurrent=True, timeout=self.timeout)
            for match in matches:
                if self.confirm is None or self.confirm(match, text):
                    return True
        except TimeoutError:
            logger.warning("sensitivity pattern '%s' timed out: the request is treated as sensitive", self.name)
            return True
        return False


def _rule(
    name: str,
    description: str,
    pattern: str,
    confirm: Callable[[Match, str], bool] | None = None,
    needs: tuple[str, ...] = (),
    stdlib: bool = False,
) -> SensitivityRule:
    compiled = re.compile(pattern) if stdlib else regex.compile(pattern, regex.VERSION1)
    return SensitivityRule(name, description, compiled, confirm, needs=needs, screen=Prefiltered(compiled))


_LABELLED_RULES: Final[tuple[SensitivityRule, ...]] = (
    _rule(
        "medical_record_number",
        "medical record, hospital, chart or patient numbers with their label (MRN: 00482913)",
        r"(?i:\b(?:MRN|(?:EPR|CHI|CSN|FIN|NHI)[ -]?(?:number|no|id)|medical[ -]record|"
        r"hosp(?:ital)?\.?[ -]?(?:number|no|id)|(?:patient|encounter|visit|admission)[ -](?:id|identifier|number|no)|"
        r"(?:chart|case|unit|record|UR)[ -](?:number|no))\b)"
        r"\.?(?:[ -](?:number|no\.?|num|#))?(?:\s*\([A-Za-z]{2,5}\))?"  # Medical Record Number (MRN)
        r"\s*(?:is\s+|=\s*|:\s*|#\s*|-)?(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,}\b",
        needs=(
            "mrn",
            "epr",
            "chi",
            "csn",
            "fin",
            "nhi",
            "medical",
            "hosp",
            "patient",
            "encounter",
            "visit",
            "admission",
            "chart",
            "case",
            "unit",
            "record",
            "ur",
        ),  # one in every label the pattern accepts
        stdlib=True,
    ),
    # One shape per rule (a top-level alternation is slower than its parts run one after another).
    _rule(
        "identifier_column",
        "a field or key of patient identifiers holding a value (JSON key, SQL column, assignment)",
        rf"(?i:['\"]{_ID_COLUMN}['\"]\s*:|\b{_ID_COLUMN}\b['\"\]]*\s*={{1,2}})"  # a key or column, then
        r"\s*(?:['\"](?=[\w/ -]*\d|\p{Lu}\p{Ll})|\d)",  # a quoted value or a number, not a variable
        needs=_ID_COLUMN_NEEDS,
    ),
    _rule(
        "identifier_column",
        "a CSV/TSV header naming a patient-identifier column, followed by a row",
        rf"(?i)\b{_ID_COLUMN}\b",
        _header_with_a_row,
        needs=_ID_COLUMN_NEEDS,
        stdlib=True,
    ),
    _rule(
        "identifier_column",
        "a table whose header puts names next to diagnoses, followed by a row",
        r"(?im:^(?=[^\n]*\bname\b)(?=[^\n]*\b(?:diagnosis|dx|condition|ward|medication|treatment)\b)"
        r"[^\n]*[,\t;|][^\n]*\n[^\n]*[,\t;|][^\n]*\w)",
        needs=("name",),
        stdlib=True,
    ),
    _rule(
        "health_record_message",
        "an HL7 v2 patient segment (PID|…) or a FHIR Patient resource with a name or birth date",
        r"(?m:^PID\|)"
        r"|(?s:\"resourceType\"\s*:\s*\"Patient\".{0,2000}?\"(?:name|birthDate|identifier)\"\s*:)"
        r"|\"family\"\s*:\s*\"\p{Lu}[^\"]*\"\s*,\s*\"given\"\s*:",  # a FHIR HumanName
        needs=("pid|", "resourcetype", "family"),
    ),
    _rule(
        "date_of_birth",
        "a date of birth (DOB 12/03/1971, born 3 March 1958)",
        rf"(?i:\b(?:DOB|D\.O\.B|date[ -]of[ -]birth|birth[ -]?date)\b)\.?[^\d\n]{{0,30}}?{_DATE}",
        needs=("dob", "d.o.b", "birth"),
    ),
    _rule(
        "date_of_birth",
        "'born' and a date, said of a person (Mr Lindqvist, born 3 March 1958)",
        rf"(?i:\bborn\b)[^\d\n]{{0,12}}?{_DATE}",
        _said_of_a_person,
        needs=("born",),
    ),
    _rule(
        "patient_name",
        "a named person as a patient or participant (Patient Maria Gonzalez, pt: Kowalski, Anna)",
        rf"(?i:\b(?:patient|pt|subject|proband|participant|client|resident)\b)(?:'s)?\.?"
        rf"(?:\s+(?i:name))?\s*(?::|-|,|\bis\b)?\s*(?:{_TITLE}\s+)?"
        rf"(?P<name>{_SURNAME_FIRST}|{_NAME}|\p{{Lu}}\.\s?{_NAME_WORD})",  # ... or "pt J. Smith"
        _names_ok,
        needs=("patient", "pt", "subject", "proband", "participant", "client", "resident"),
    ),
    _rule(
        "patient_name",
        "two rows of a list, each a name beside two of an age, a sex and a date (Maria Gonzalez,45,F,2023-04-01)",
        rf"(?m:^[ \t|]*(?P<name>{_NAME})[ \t]*[,\t;|][^\n]*\n(?:[ \t|:-]*\n)?[ \t|]*{_NAME}[ \t]*[,\t;|][^\n]*)",
        _patient_rows,
    ),
    _rule(
        "patient_name",
        "a titled surname in clinical text (Mr. Thompson, a 67-year-old man)",
        rf"\b{_TITLE}\s+(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD})?)",
        _in_clinical_context,
        needs=("mr", "ms", "miss", "mx"),
    ),
    _rule(
        "patient_name",
        "a name followed by an age (Maria Gonzalez, a 54-year-old woman)",
        rf"(?P<name>{_NAME}),?\s+(?:(?i:a|an|aged)\s+)?\d{{1,3}}[- ](?i:years?|yrs?|y/?o)(?:[- ](?i:old))?\b",
        _names_ok,
        needs=("year", "yr", "yo", "y/o"),
    ),
    _rule(
        "patient_name",
        "a name followed by an age and sex (Maria Gonzalez (54 F))",
        rf"(?P<name>{_NAME}),?\s+\(?\d{{1,3}}\s?(?:[MF]|yo|y/o)\b",
        _names_ok,
    ),
    _rule(
        "patient_name",
        "a name as the subject of a clinical event (Thomas Bergström was admitted, Ana Lima underwent ...)",
        rf"(?P<name>{_NAME})\s+(?:(?i:was|is|has been|had been|had|has)\s+)?"
        r"(?i:admitted|diagnosed|present(?:ed|s) with|referred|discharged|prescribed|started on|seen in clinic|"
        r"transferred|underwent|is undergoing|complain(?:s|ed) of|tested positive|relapsed)\b",
        _names_ok,
        needs=(
            "admitted",
            "diagnosed",
            "present",
            "referred",
            "discharged",
            "prescribed",
            "started on",
            "seen in clinic",
            "transferred",
            "underwent",
            "undergoing",
            "complain",
            "tested positive",
            "relapsed",
        ),
    ),
    _rule(
        "patient_name",
        "a person's clinical or family details by name (Daniel O'Connor's parents, Ana Lima's MRI)",
        rf"(?P<name>{_NAME})['’]s\s+(?i:parents?|mother|father|wife|husband|partner|family|son|daughter|GP|"
        r"MRI|CT|scan|results?|biopsy|tumou?r|diagnosis|treatment|symptoms|bloods|labs?|medication|"
        r"appointment|referral|consent|genotype|exome|genome|variant|carrier status)\b",
        _names_ok,
        needs=("'s", "’s"),
    ),
    _rule(
        "patient_name",
        "a name after a 'Name:' label in clinical text",
        rf"(?i:\b(?:name|patient name|full name)\s*:)\s*(?P<name>{_SURNAME_FIRST}|{_NAME})",
        _in_clinical_context,
        needs=("name",),
    ),
    _rule(
        "patient_name",
        "a labelled surname or forename (Surname: ABERNATHY, Forename: Colin)",
        r"(?i:\b(?:surname|forename|first[ _]name|last[ _]name|given[ _]names?|family[ _]name)\s*[:=]\s*['\"]?)"
        r"(?:\p{Lu}\p{Ll}+|\p{Lu}{2,}\b)",
        needs=("surname", "forename", "first", "last", "given", "family"),
    ),
    _rule(
        "patient_name",
        "a clinical document about a named person (discharge letter for Svetlana Ivanova)",
        rf"(?i:\b(?:discharge|letter|notes?|records?|chart|referral|results?|reports?|summary|history|file|"
        rf"appointment)\s+"
        rf"(?:for|of|on|about)\s+)(?:{_TITLE}\s+)?(?P<name>{_NAME})",
        _in_clinical_context,
        needs=(
            "discharge",
            "letter",
            "note",
            "record",
            "chart",
            "referral",
            "result",
            "report",
            "summary",
            "history",
            "file",
            "appointment",
        ),
    ),
    _rule(
        "phone_number",
        "a telephone number (+44 20 7946 0958, (555) 123-4567, tel: 0161 496 0000)",
        r"(?<![\w.:/+-])(?:"
        r"\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}"  # international, with +
        r"|(?:1[\s.-])?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}"  # North American: (555) 123-4567, 555-123-4567
        r"|0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4}|07\d{3}\s?\d{6}"  # UK national
        r"|(?i:(?:tel|phone|mobile|cell|fax)\b\.?(?:\s*(?:no\.?|number|#))?\s*:?\s*)\+?\d[\d\s().-]{6,}\d"
        r")(?![\w.-]*\d)",
        _enough_phone_digits,
        stdlib=True,
    ),
    _rule(
        "email_address",
        "a personal e-mail address",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        _personal_email,
        needs=("@",),
    ),
    _rule(
        "postal_address",
        "a street address (221B Baker Street)",
        r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,3}"
        r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Boulevard|Blvd|Court|Close|Crescent|Place|Terrace|"
        r"Way|Gardens|Grove|Parkway|Pkwy|Highway|Hwy|Mews)\b",
        stdlib=True,
    ),
    _rule(
        "postal_address",
        "a UK postcode (M13 9PL)",
        r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-HJKPSTUW\d]?)\s\d[ABD-HJLNP-UW-Z]{2}\b",
        stdlib=True,
    ),
    _rule(
        "postal_address",
        "a US city, state and ZIP code (Springfield, IL 62704)",
        r"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,\s+[A-Z]{2}\s+\d{5}(?:-\d{4})?\b",
        stdlib=True,
    ),
    _rule(
        "postal_address",
        "a house number and a Romance street word (62 Rue des Tanneurs)",
        r"\b\d{1,4}(?:bis|ter)?,?\s+(?:Rue|Avenue|Boulevard|Chemin|Place|All[ée]e|Impasse|Via|Viale|Piazza|Calle|"
        r"Avenida|Plaza|Rua|Carrer)\s+(?:\p{L}+\s+){0,3}\p{L}+",
        needs=(
            "rue",
            "avenue",
            "boulevard",
            "chemin",
            "place",
            "allée",
            "allee",
            "impasse",
            "via",
            "piazza",
            "calle",
            "avenida",
            "plaza",
            "rua",
            "carrer",
        ),
    ),
    _rule(
        "postal_address",
        "a Germanic street name and house number (Lindenstraße 12)",
        r"\b\p{Lu}\p{Ll}+(?:straße|strasse|weg|gasse|platz|allee|laan|straat|gatan|vej)\s+\d{1,4}[a-z]?\b",
    ),
    _rule(
        "national_id",
        "a US social security number by its shape (529-41-7786)",
        r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])",
        stdlib=True,
    ),
    _rule(
        "national_id",
        "a US social security number after its label (SSN 529417786)",
        r"(?i:\b(?:SSN|social[ -]security[ -](?:number|no))\b)\.?\s*:?\s*\d{3}[\s-]?\d{2}[\s-]?\d{4}\b",
        needs=("ssn", "social"),
        stdlib=True,
    ),
    _rule(
        "national_id",
        "a UK NHS number (checked with its modulus-11 digit, in a text that mentions the NHS)",
        r"(?<![\d-])(?P<nhs>\d{3}[ -]?\d{3}[ -]?\d{4})(?![\d-])",
        _nhs_number,
        needs=("nhs",),
    ),
    _rule(
        "national_id",
        "a UK National Insurance number (QQ 12 34 56 C)",
        r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
        stdlib=True,
    ),
    _rule(
        "national_id",
        "a passport or national identity card number with its label",
        r"(?i:\b(?:passport|national[ -]id(?:entity)?(?:[ -]card)?|id[ -]card)\b)"
        r"(?:\s*(?i:number|no\.?|#))?\s*:?\s*(?=[A-Z0-9]*\d)[A-Z0-9]{6,12}\b",
        needs=("passport", "national", "id"),
    ),
)

BUILTIN_RULES: Final[tuple[SensitivityRule, ...]] = _LABELLED_RULES + tuple(
    _rule(spec.name, spec.description, spec.pattern, spec.confirm, spec.needs, spec.stdlib)
    for spec in IDENTIFIER_RULES + NATIONAL_ID_RULES
)

UNAVAILABLE: Final = "detector:unavailable"
# Rules of the records and people layers; a profile may switch them off by name like any built-in rule.
LAYER_RULE_NAMES: Final = ("record:clinical_note", "record:lab_results", "person:name")
BUILTIN_RULE_NAMES: Final = tuple(dict.fromkeys(rule.name for rule in BUILTIN_RULES)) + LAYER_RULE_NAMES


def _profile_rule(name: str, pattern: str, ignore_case: bool) -> SensitivityRule:
    flags = regex.VERSION1 | (regex.IGNORECASE if ignore_case else 0)
    return SensitivityRule(
        f"pattern:{name}", "profile pattern", regex.compile(pattern, flags), timeout=PATTERN_TIMEOUT_S
    )


def compile_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regex, or None when it is (for profile validation)."""
    try:
        compiled = regex.compile(pattern, regex.VERSION1)
    except regex.error as e:
        return f"not a valid regular expression: {e}"
    if compiled.search(""):
        return "matches the empty string, so it would mark every request sensitive"
    return None


class SensitivityDetector:
    """Which rules fire on a text. Built from a profile's governance settings, reused per request.

    ``clinical_notes``/``lab_results``/``people`` switch the record and people layers; ``record_cues``
    is how many note-cue families make a clinical note (lower is stricter).
    """

    def __init__(
        self,
        rules: Sequence[SensitivityRule],
        *,
        clinical_notes: bool = True,
        lab_results: bool = True,
        people: bool = True,
        record_cues: int = records.DEFAULT_RECORD_CUES,
        remember: int = 2048,
    ) -> None:
        self.rules = tuple(rules)
        self._cue_words = CueIndex(word for rule in self.rules for word in rule.needs)
        # Which rules a text's cue words make worth asking: a rule with cue words cannot fire on a text
        # holding none of them, and most texts hold few, so a scan visits a dozen rules, not ~85.
        self._uncued = frozenset(index for index, rule in enumerate(self.rules) if not rule.needs)
        self._cued: dict[str, frozenset[int]] = {}
        for index, rule in enumerate(self.rules):
            for word in rule.needs:
                self._cued[word] = self._cued.get(word, frozenset()) | {index}
        # rule names in the order a Decision lists them: identifiers, records, people, then a failed layer
        names = [rule.name for rule in self.rules] + list(LAYER_RULE_NAMES) + [UNAVAILABLE]
        self._order = {name: index for index, name in enumerate(dict.fromkeys(names))}
        self.verdicts = ChunkVerdicts(remember)  # long texts' verdicts, for conversations (0: none)
        self.clinical_notes = clinical_notes
        self.lab_results = lab_results
        self.people = people
        self.record_cues = record_cues

    @classmethod
    def build(
        cls,
        *,
        disabled: Iterable[str] = (),
        patterns: Iterable[tuple[str, str, bool]] = (),
        record_cues: int = records.DEFAULT_RECORD_CUES,
        remember: int = 2048,
    ) -> SensitivityDetector:
        """Built-in rules minus ``disabled``, plus ``(name, regex, ignore_case)`` profile patterns;
        ``remember``: how many long texts' verdicts are kept (0: every scan reads every text)."""
        off = set(disabled)
        rules = [rule for rule in BUILTIN_RULES if rule.name not in off]
        rules.extend(_profile_rule(name, pattern, ignore_case) for name, pattern, ignore_case in patterns)
        return cls(
            rules,
            clinical_notes="record:clinical_note" not in off,
            lab_results="record:lab_results" not in off,
            people="person:name" not in off,
            record_cues=record_cues,
            remember=remember,
        )

    def scan(self, texts: Iterable[str]) -> tuple[str, ...]:
        """Names of the rules that fire on any of ``texts``, each once: identifiers, records, then people.

        The people layer (the costly one) runs only when nothing cheaper fired. A layer that raises
        or cannot load adds ``detector:unavailable`` (logged, counted), which keeps the request local.
        Long texts scanned before (a conversation's earlier turns) are answered from :attr:`verdicts`.
        """
        fired: list[str] = []
        chunks = [(text, ChunkVerdicts.key(text)) for text in texts if text]
        found: list[ChunkVerdict | None] = []
        for text, key in chunks:
            verdict = self.verdicts.get(key)
            if verdict is None:
                verdict = self._cheap_layers(text, fired)
                if verdict is not None:
                    self.verdicts.put(key, verdict)
            found.append(verdict)
            for name in verdict.rules if verdict is not None else ():
                if name not in fired:
                    fired.append(name)
        if self.people and not fired:
            try:
                for (text, _), verdict in zip(chunks, found, strict=True):
                    person = verdict.person if verdict is not None else None
                    if person is None:  # not read by this layer yet (or a text not remembered)
                        person = bool(people.person_rules(text))
                        if verdict is not None:
                            verdict.person = person
                    if person:
                        fired.append("person:name")
                        break
            except Exception as e:  # PeopleUnavailable (the model cannot load) or a failure inside spaCy
                self._unavailable(fired, "people", e)
        return tuple(sorted(fired, key=self._order.__getitem__))

    def _cheap_layers(self, text: str, fired: list[str]) -> ChunkVerdict | None:
        """Identifier and record rules that fire on one text; None when a layer failed (it adds
        ``detector:unavailable`` to ``fired``), so that no incomplete verdict is remembered."""
        names: list[str] = []
        lowered = text.casefold()
        complete = True
        try:
            cues = self._cue_words.present(lowered)  # one pass over the text for every rule's cue words
            for rule in self._worth_asking(cues):
                if rule.name not in names and rule.fires(text, lowered, cues):
                    names.append(rule.name)
        except Exception as e:  # a broken rule must not let the request through unscanned
            self._unavailable(fired, "identifiers", e)
            complete = False
        if self.clinical_notes or self.lab_results:
            try:
                names.extend(
                    records.record_rules(
                        text, self.record_cues, folded=lowered, notes=self.clinical_notes, labs=self.lab_results
                    )
                )
            except Exception as e:
                self._unavailable(fired, "records", e)
                complete = False
        if not complete:  # what did fire still counts for this request
            fired.extend(name for name in names if name not in fired)
            return None
        return ChunkVerdict(tuple(names))

    def _worth_asking(self, cues: frozenset[str]) -> list[SensitivityRule]:
        """The rules that can fire on a text holding ``cues``, in rule order (the order names are reported in)."""
        indexes = set(self._uncued)
        for word in cues:
            indexes.update(self._cued.get(word, ()))
        return [self.rules[index] for index in sorted(indexes)]

    @property
    def ready(self) -> bool:
        """Whether a scan costs milliseconds now (False until the people layer's model is loaded)."""
        return not self.people or people.loaded()

    def costly(self, texts: Sequence[str]) -> bool:
        """Whether scanning ``texts`` may call the NER model (then it belongs in a worker thread, not on the loop)."""
        return self.people and any(people.would_run_model(text) for text in texts if text)

    def warm(self) -> bool:
        """Load what the layers need (the RE2 screens, the NER model) now; False when a layer cannot load
        (scans fail closed)."""
        build_all()
        return not self.people or people.warm()

    @staticmethod
    def _unavailable(fired: list[str], layer: str, error: Exception) -> None:
        logger.warning(
            "biorouter sensitivity: the %s layer failed (%s: %s); the request is kept local (%s)",
            layer,
            type(error).__name__,
            error,
            UNAVAILABLE,
        )
        metrics.record_detector_unavailable(layer)
        if UNAVAILABLE not in fired:
            fired.append(UNAVAILABLE)
