"""Patient records: text that reads as a record about one patient, sensitive even without a name.

A nursing or progress note, a discharge summary or one patient's dated lab rows identifies a person
through its detail (dates, ward, events, relatives) even after names are cut out, and the excerpt a
user pastes often still holds them in shorthand no name model reads ("dtr called", "pt's wife at
bedside"). So this layer does not look for names: it recognises the *genre*.

A note is recognised by its structure, counted as *families* of cues so that one repeated word
cannot make a record: bedside shorthand (pt, c/o, s/p, prn, q4h, npo, abx…), vital signs written as
values (BP 118/72, HR 88, sats 96%), body-system headings (NEURO:, RESP-, GI/GU), shift and time
words (overnight, this shift, 0700), care verbs (cont to, remains on, tolerating, will monitor),
events about one person (pt/he/she admitted, transferred, family at bedside). Study abstracts,
cohort questions and docs describe *many* patients (percentages, p-values, "patients were"), which
counts against the score. ``min_cues`` (the profile's ``record_cues``) is how many families must
be present.

Lab rows, one person's results as three or more rows in any common layout, are read by
:mod:`biorouter.governance.lab_rows` (``record:lab_results``).

Why not a head on the request embedding (as first planned): the cloud-encoder path must have the
scan's verdict *before* it may embed the text, and the guard path has no embedding at all, so a
governance signal that needs the vector would be missing exactly where it matters. The cues run
in well under a millisecond on every path.
"""

from __future__ import annotations

import re
from typing import Final

from biorouter.governance import lab_rows
from biorouter.governance.prefilter import Prefiltered

__all__ = ["DEFAULT_RECORD_CUES", "record_rules"]

DEFAULT_RECORD_CUES: Final = 3

_F = 0  # the stdlib engine: these lower-case literal alternations run up to twice as fast in it as in regex
# Each family: a compiled pattern; a family counts once however often it matches. Every pattern here is
# written in lower case and runs on the case-folded text (case-insensitive matching is several times slower).
_FAMILIES: Final[dict[str, re.Pattern[str]]] = {
    "shorthand": re.compile(
        r"(?:\b(?:pt|pt['’]s|c/o|s/p|h/o|w/o|b/l|prn|q\d{1,2}h|qhs|qid|tid|bid|npo|ivf|abx|u/o|i&o|i/o|f/u|"
        r"sob|cxr|ngt|ogt|ett|foley|gtt|vss|afeb(?:rile)?|tmax|lsc|cta|dsg|oob|bm|po|iv|sq|sl|sats?|"
        r"r/o|d/c|d/c'?d|dtr|md|rn|np|ho|hr|bp|rr|neuro|resp|abd|ext|gu|gi|cv|id|hct|k\+|mg\+\+|"
        r"lytes|rx|tx|dx|hx|fx|sx)\b)",
        _F,
    ),
    "vitals": re.compile(
        r"(?:\b(?:bp|b/p|nbp|abp|sbp|map)\s*[:=-]?\s*\d{2,3}\s*/\s*\d{2,3}"
        r"|\b(?:hr|pulse|rr|resp(?:iratory)?\s+rate)\s*[:=-]?\s*\d{2,3}\b"
        r"|\b(?:sats?|spo2|sao2|o2\s*sats?)\s*[:=-]?\s*(?:\d{2,3}\s*%|\d{2}-\d{2,3})"
        r"|\b(?:temp|t|tmax|t°)\s*[:=-]?\s*(?:3[5-9]|9[6-9]|10[0-4])[.,]\d\b"
        r"|\b(?:rr|ta|pa|tam|pam|tas)\s*[:=-]?\s*\d{2,3}\s*/\s*\d{2,3}"
        r"|\b(?:hf|fc|fr|puls|pulso|polso)\s*[:=-]?\s*\d{2,3}\b"
        r"|\b(?:sato2|spo2|sao2|sat|sätt)\s*[:=-]?\s*\d{2,3}\s*%"
        r"|\bfio2\s*[:=-]?\s*(?:0[.,]\d+|\d{2,3}\s*%)"
        r"|\b(?:diurese|diuresis|diuresi|diures|diurèse|bilanz|balance)\s*[:=-]?\s*[+-]?\d"
        r"|\b(?:nrs|eva|vas|ens)\s*[:=-]?\s*\d{1,2}\b"
        r"|\b\d{2,4}\s*(?:cc|ml)\s*/\s*(?:hr|hour|h)\b"
        r"|\b\d{1,3}\s*(?:l|lpm|l/min)\s*(?:nc|nasal\s+cannula|fm|face\s*mask)\b)",
        _F,
    ),
    "system_headings": re.compile(
        r"(?m:^[ \t>*-]*(?:neuro|resp(?:iratory)?|cv|cardiac|cardio|gi|gu|renal|id|skin|endo|heme|social|"
        r"psych(?:o-?social)?|pain|access|lines|activity|integ|musculoskeletal|ms|a/p|plan|assessment|impression|"
        r"s|o|a|p|hpi|pmh|meds|allergies|dispo(?:sition)?|events|labs|exam|course|diet|nutrition|f/e/n|fen)"
        r"[ \t]*(?::|-|–|/[a-z]{2,}\s*:)(?!//))",
        _F,
    ),
    "shift_time": re.compile(
        r"(?:\b(?:this\s+shift|on\s+(?:day|night|eve(?:ning)?)s?\s+shift|overnight|o/n|noc|during\s+the\s+night|"
        r"am\s+labs|pm\s+labs|this\s+am|this\s+pm|at\s+(?:[01]\d|2[0-3])[0-5]\d\b|(?:[01]\d|2[0-3])[0-5]\d\s*-\s*"
        r"(?:[01]\d|2[0-3])[0-5]\d\b|nachtdienst|frühdienst|spätdienst|dagdienst|avonddienst|"
        r"turno\s+(?:de\s+|da\s+|di\s+)?(?:mañana|tarde|noche|noite|manhã|notte|mattina|pomeriggio)|"
        r"nuit|équipe\s+de\s+(?:jour|nuit)|kvällen?|natten|dagpass|nattpass|verlaufsnotiz|pflegebericht|"
        r"pflegedokumentation|verlaufsbogen|nota\s+de\s+enfermer[ií]a|hoja\s+de\s+evoluci[oó]n|evoluci[oó]n|"
        r"diario\s+clinico|consegna|rapportage|overdracht|omvårdnadsanteckning|journalanteckning|"
        r"transmissions?\s+ciblées?|feuille\s+de\s+surveillance|registo\s+de\s+enfermagem|di[aá]rio\s+de\s+enfermagem|"
        r"scheda\s+(?:terapia|infermieristica)|notatka\s+pielęgniarska|sygeplejenotat|"
        r"nursing\s+(?:note|progress|admission)|progress\s+note|npn|shift\s+note)\b)",
        _F,
    ),
    "care_verbs": re.compile(
        r"(?:\b(?:cont(?:inue[sd]?)?\s+to\s+(?:monitor|be|have|receive|require|need)|will\s+(?:cont(?:inue)?|monitor|"
        r"f/u|follow|recheck|re-?check|titrate)|remains?\s+(?:on|in|off|intubated|stable|afebrile|npo|sedated)|"
        r"tolerat(?:ing|ed)\s+(?:well|po|diet|feeds?|tf)|weaned|titrated|suctioned|medicated\s+(?:with|for)|"
        r"repositioned|turned\s+q|placed\s+on|bolus(?:ed)?|given\s+\d|pt\s+(?:is|was|has|had|denies|c/o|states|"
        r"reports|appears|remains|resting|sleeping|awake|alert|oriented|tolerated)|md\s+aware|ho\s+aware|"
        r"(?:dr|doctor)\.?\s+[^\W\d_]+\s+(?:aware|notified|informed|paged)|"
        r"gegeben|verabreicht|informiert|verständigt|mobilisiert|gestartet|angehängt|gegeven|gemobiliseerd|"
        r"toegediend|gebeld|somministrat[oaie]|iniziat[oa]|sospes[oa]|administrad[oa]s?|pautad[oa]|se\s+inicia|"
        r"se\s+pasa|se\s+suspende|administr[ée]e?s?|prévenue?|avisée?|mis\s+en\s+place|insatt|kontaktad?e?|"
        r"informerad|given|administrad[oa]|iniciad[oa]|suspens[oa]|podano|zgłoszono|givet|påbegyndt)\b)",
        _F,
    ),
    "one_person": re.compile(
        r"(?:\b(?:pt|patient|he|she)\s+(?:was|is|has\s+been)\s+(?:admitted|transferred|intubated|extubated|"
        r"discharged|seen|found|brought|sent)|\b(?:family|wife|husband|son|daughter|dtr|mother|father|sister|"
        r"brother|niece|nephew|spouse|partner|friend|grand(?:son|daughter))\s+(?:at\s+bedside|in\s+to\s+visit|"
        r"visited|visiting|called|updated|here|present|in\s+(?:today|this)|aware)|\b(?:called|visited|updated)\s+"
        r"by\s+(?:his|her|the)?\s*(?:wife|husband|son|daughter|dtr|mother|father|family|sister|brother)|"
        r"\bfull\s+code\b|\bdnr\b|\bdni\b|\bcode\s+status|\bhis\s+wife\b|\bher\s+husband\b|\bpt['’]s\s+\w+|"
        r"\b(?:admitted|discharged)\s+(?:on|to|from)\b|\bdischarge\s+(?:summary|diagnosis|medications)|"
        r"\bchief\s+complaint|\bhistory\s+of\s+present\s+illness|\bmedical\s+record\s+number|\b(?:yo|y/o)\s+[mf]\b"
        r"|\b\d{1,3}\s*(?:yo|y/o|year[- ]old)\s+(?:man|woman|male|female|m|f|boy|girl|gentleman|lady)\b"
        r"|\b(?:pat\.|patientin|paciente|paziente|patiënt|doente|pacjent(?:ka)?)"
        r"|\b(?:bett|letto|cama|kamer|sal|box|lit|zimmer|stanza|habitación|hab\.|säng|sala|quarto|łóżko|seng|bed)"
        r"\s*(?:nr\.?\s*)?\d{1,3}\b"
        r"|\b\d{1,3}\s*(?:j\.|jahre|jährige[rn]?|a\.|años|aa|anni|jaar|år|ans|anos|lat|-jähriger?)\b"
        r"|\b(?:sohn|tochter|ehefrau|ehemann|hijo|hija|esposa|esposo|marido|figlio|figlia|nipote|moglie|marito|zoon|"
        r"dochter|echtgeno(?:te|ot)|dottern|sonen|hustrun?|maken|fils|fille|épouse|mari|filho|filha|syn|córka|żona|"
        r"mąż|søn|datter|hustru)\b)",
        _F,
    ),
}
# What speaks of many patients or of methods, not of one patient's care.
_COHORT: Final = re.compile(
    r"(?:\bp\s*[<=>≤]\s*0?\.\d|\b95\s*%\s*(?:ci|confidence)|\bodds\s+ratio|\bhazard\s+ratio|\bcohort|"
    r"\b(?:patients|participants|subjects|children|women|men|cases|controls)\s+(?:were|was|who|with|had|aged|"
    r"underwent|received)\b|\bn\s*=\s*\d|\brandomi[sz]ed|\bretrospective|\bprospective|\bmeta-analysis|"
    r"\bwe\s+(?:studied|analy[sz]ed|investigated|assessed|evaluated|included|enrolled|compared|examined)|"
    r"\bmean\s*(?:\(|±|age)|\bmedian\b|\bstatistically|\bsignificant(?:ly)?\b|\bregression\b|\bprevalence\b|"
    r"\bincidence\b|\bsensitivity\s+and\s+specificity|\bobjective[s]?\s*:|\bmethods?\s*:|\bresults?\s*:|"
    r"\bconclusions?\s*:|\bbackground\s*:)",
    _F,
)


# The same patterns behind an RE2 screen: pasted code and logs hold none of these words, and proving
# that in one linear pass is 20-30 times faster than the backtracking search (answers unchanged).
_SCREENED_FAMILIES: Final = {name: Prefiltered(pattern) for name, pattern in _FAMILIES.items()}
_SCREENED_COHORT: Final = Prefiltered(_COHORT)


def note_cues(text: str, enough: int | None = None) -> tuple[int, int]:
    """How many note-cue families the (case-folded) text holds, and how many cohort/method cues count against.

    With ``enough``, counting stops once the families reach ``enough`` plus what the cohort cues take
    away, or once that is out of reach (the answer is then known): a real note stops after a few cheap
    searches, and code, tables and abstracts stop after the first few misses.
    """
    cohort = len({m.group(0) for m in _SCREENED_COHORT.finditer(text[:6000])})
    target = None if enough is None else enough + (cohort + 1) // 2
    families = 0
    still_possible = len(_SCREENED_FAMILIES) + 1  # families not yet searched, plus the dense-shorthand bonus
    for pattern in _SCREENED_FAMILIES.values():
        still_possible -= 1
        if pattern.search(text) is not None:
            families += 1
            if target is not None and families >= target:
                return families, cohort
        elif target is not None and families + still_possible < target:
            return families, cohort  # the target is out of reach: skip the remaining searches
    if len(_SCREENED_FAMILIES["shorthand"].findall(text[:6000])) >= 6:  # dense bedside shorthand weighs as a family
        families += 1
    return families, cohort


def is_clinical_note(text: str, min_cues: int = DEFAULT_RECORD_CUES) -> bool:
    """Whether case-folded ``text`` reads as a note about one patient: ``min_cues`` families, cohort talk subtracted."""
    if len(text) < 60:
        return False
    families, cohort = note_cues(text, enough=min_cues)
    return families - (cohort + 1) // 2 >= min_cues


def record_rules(
    text: str,
    min_cues: int = DEFAULT_RECORD_CUES,
    *,
    folded: str | None = None,
    notes: bool = True,
    labs: bool = True,
) -> tuple[str, ...]:
    """``record:*`` rule names that fire on ``text`` (``folded``: its ``casefold()``, when the caller has it).

    ``notes`` / ``labs`` say which of the two rules the profile keeps. A note's vital signs would read as
    rows too, so the lab rows are looked for only when the text is not already a note: one record rule
    says enough, and a long note is not read twice.
    """
    text = text.casefold() if folded is None else folded
    if notes and is_clinical_note(text, min_cues):
        return ("record:clinical_note",)
    if labs and lab_rows.is_lab_results(text):
        return ("record:lab_results",)
    return ()
