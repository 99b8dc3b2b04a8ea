"""The RE2 screen in front of the detector's patterns never changes an answer, only how fast it comes.

A screen that rejected a text its pattern matches would let sensitive text through, so every
shipped standard-library pattern is checked against the pattern itself: on the project's own
sensitivity texts (as written and case-folded, as the record layer reads them) and on random
text built from the characters where RE2 and Python disagree (``İ ı ſ K`` under ``(?i)``,
non-ASCII digits, spaces and letters beside a ``\\b``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regex

from biorouter.governance import cue_index, identifiers, lab_rows, national_ids, people, prefilter, records, sensitivity
from biorouter.governance.prefilter import Prefiltered
from biorouter.governance.superset import superset_pattern

DATA = Path(__file__).resolve().parents[1] / "data" / "sensitivity"


def _patterns_in(value: Any, depth: int = 0) -> Iterator[Any]:
    if depth > 3:
        return
    if isinstance(value, re.Pattern | regex.Pattern) and isinstance(value.pattern, str):
        yield value
    elif isinstance(value, Prefiltered | sensitivity.SensitivityRule):
        yield from _patterns_in(value.pattern, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _patterns_in(item, depth + 1)
    elif isinstance(value, list | tuple | frozenset | set):
        for item in value:
            yield from _patterns_in(item, depth + 1)


def shipped_patterns(engine: Any) -> list[Any]:
    """Every compiled pattern of ``engine`` (``re`` or ``regex``) the detector's modules hold."""
    found: dict[tuple[str, int], Any] = {}
    for module in (sensitivity, records, lab_rows, people, identifiers, national_ids, cue_index):
        for value in vars(module).values():
            for pattern in _patterns_in(value):
                if isinstance(pattern, engine.Pattern):
                    found[(pattern.pattern, pattern.flags)] = pattern
    return list(found.values())


PATTERNS = shipped_patterns(re)
# The built-in rules' regex-module patterns (the people layer's own line checks run on short lines, unscreened).
REGEX_RULE_PATTERNS = [rule.pattern for rule in sensitivity.BUILTIN_RULES if isinstance(rule.pattern, regex.Pattern)]
TRICKY = [
    r"(?i)\bpatient\b",
    r"\bpt\b",
    r"(?i)\b(?:sk|ik)\w*",
    r"\d{3}[-\s]\d{2}",
    r"(?P<sep>[-/.])\d\d(?P=sep)\d{4}",
    r"(?<![\w.])\d{2}(?!\d)",
    r"(?i)[a-z]{2,}",
    r"(?i)[^k]s",
    r"[^\W\d]+\b",
    r"[\D]x",
    r"(?m)^\s*x$",
    r"\Bq",
    r"(?i:K)elvin",
    r"(?i)σ\w",
    r"(?:a|b(?=c))+\b",
    r"(x)?(?(1)y|z)",
    r"(?<![\w-])(?:na|k|hb|crp)(?![\w-])",
    r"(?<![\w.])\d{2,}(?!\w)",
    r"(?<!_)ab(?![a-z])",
    r"(?i)(?<!\w)k\w*(?!\w)",
    r"(?<![\w-])é\w",
    r"(?:(?<!\d)\d{3})+x",
    r"a(?![b])[a-z]",
]
ALPHABET = [
    "patient", "PATİENT", "pat\u0131ent", "ſ", "\u212a", "K", "k", "s", "i", "İ", "ı", "pt", "äpt", "ptä", " ",
    "\u00a0", "\u2003", "\n", "\t", "٣", "१२", "12", "345", "0", "7", "-", "/", ".", ":", "_", "x", "y", "z",
    "q", "é", "ß", "Σ", "ς", "σ", "MRN", "Mr", "DOB", "\u00b5", "(", ")", "+44", "@", "ab", "c", "\U0001d7d9",
    "na", "hb", "crp", "é", "ę",
]  # fmt: skip


def corpus() -> list[str]:
    texts: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line)["text"]
                texts += [text, text.casefold()]
    return texts


def fuzz(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))) for _ in range(count)]


def spans(matches: Iterator[re.Match[str]]) -> list[tuple[int, int]]:
    return [match.span() for match in matches]


def test_every_shipped_standard_library_pattern_gets_a_screen() -> None:
    assert len(PATTERNS) >= 25
    plain = [pattern.pattern[:80] for pattern in PATTERNS if not Prefiltered(pattern).accelerated]
    assert plain == []


@pytest.mark.parametrize("source", TRICKY)
def test_tricky_patterns_answer_exactly_as_the_standard_library(source: str) -> None:
    pattern = re.compile(source)
    screened = Prefiltered(pattern)
    assert screened.accelerated
    for text in fuzz(3000, seed=len(source)):
        assert spans(screened.finditer(text)) == spans(pattern.finditer(text)), (source, text)


def test_shipped_patterns_answer_exactly_on_the_projects_texts_and_on_random_text() -> None:
    texts = corpus() + fuzz(400, seed=7)
    assert len(texts) > 500
    for pattern in PATTERNS:
        screened = Prefiltered(pattern)
        for text in texts:
            assert spans(screened.finditer(text)) == spans(pattern.finditer(text)), (pattern.pattern[:80], text[:80])


def test_the_screen_rejects_most_of_a_pasted_log_without_running_the_pattern() -> None:
    log = "2026-11-21 10:42:17 INFO [bwa_mem] Processed 400000 reads in 31.2 CPU sec\n" * 100
    note_families = [Prefiltered(pattern) for pattern in records._FAMILIES.values()]
    assert sum(screen.first_possible(log.casefold()) is None for screen in note_families) >= len(note_families) - 1


def test_a_text_re2_cannot_encode_falls_back_to_the_pattern() -> None:
    pattern = re.compile(r"\d{3}-\d{2}-\d{4}")
    screened = Prefiltered(pattern)
    text = "SSN 123-45-6789 \ud800"  # a lone surrogate: not UTF-8
    assert screened.search(text) is not None


def built_in_combined_sets() -> list[Any]:
    """The combined sets the shipped screens joined (the detector's warm-up builds them)."""
    sensitivity.SensitivityDetector.build().warm()
    sets = {id(screen._member[0]): screen._member[0] for screen in alive_screens() if screen._member is not None}
    return list(sets.values())


def alive_screens() -> list[Prefiltered]:
    return [screen for screen in (ref() for ref in prefilter._ALL) if screen is not None]


def test_a_combined_set_names_exactly_the_screens_that_match_one_by_one() -> None:
    combined_sets = built_in_combined_sets()
    assert sum(len(combined.members) for combined in combined_sets) >= 40  # the plain built-in screens
    texts = corpus()[::3] + fuzz(200, seed=5) + [""]
    for combined in combined_sets:
        for text in texts:
            one_by_one = {i for i, screen in enumerate(combined.members) if screen._fast.search(text) is not None}
            assert combined.possible(text) == frozenset(one_by_one), text[:80]


def test_a_failed_set_pass_leaves_each_screen_to_search_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # RE2's DFA can run out of memory on a set, and the binding then answers "no match" without
    # an error. That cannot be provoked reliably here, so the set's answer is replaced by that
    # empty one: the sentinel is missing, and every screen must fall back to its own search.
    [combined, *_] = built_in_combined_sets()

    class FailingSet:
        def Match(self, text: str) -> list[int]:  # the binding's name
            return []

    monkeypatch.setattr(combined, "_set", FailingSet())
    monkeypatch.setattr(combined, "_recent", {})
    texts = corpus()[::7]
    for screen in combined.members:
        for text in texts:
            assert spans(screen.finditer(text)) == spans(screen.pattern.finditer(text)), text[:80]
    assert any(screen.search(text) is not None for screen in combined.members for text in texts)


@pytest.mark.parametrize(
    ("source", "reason"),
    [(r"(?a)(?i)x", "ASCII case folding"), (r"(?i)[\x00-\U0010ffff]", "very wide range")],
)
def test_what_has_no_superset_keeps_the_plain_path(source: str, reason: str) -> None:
    pattern = re.compile(source)
    with pytest.raises(ValueError, match=reason):
        superset_pattern(pattern)
    assert not Prefiltered(pattern).accelerated


def test_the_case_table_is_the_standard_librarys_own() -> None:
    import _sre

    from biorouter.governance.superset import _lowered_from

    brute: dict[int, list[int]] = {}
    for point in range(0x110000):
        lower = _sre.unicode_tolower(point)
        if lower != point:
            brute.setdefault(lower, []).append(point)
    assert _lowered_from() == {lower: tuple(points) for lower, points in brute.items()}


TRICKY_REGEX = [
    r"(?i)history",
    r"(?i)hi[s]tory",
    r"(?i)stra(?:ss|ß)e",
    r"(?i)ß\w",
    r"(?i)\p{Lu}\p{Ll}+",
    r"\p{Lu}\p{Ll}+\s(?i:von|van)\s\p{Lu}",
    r"(?i)[^x]y",
    r"(?i)\bİ\w",
    r"(?i)fi\w|ﬁle",
    r"(?<![\w-])\p{Lu}{2,}(?![\w-])",
    r"(?i:\bmrn\b)\s*\d+",
    r"(?P<a>\p{L})(?P=a)",
    r"(?i)ı\w",
    r"(?i)[ſK]\w",
    r"(?i)µm",
]
FOLDING = ["I", "ı", "µ", "μ", "Μ", "ß", "ẞ", "ﬆ", "ﬅ", "ﬁ", "ﬀ", "ŉ", "İ", "SS", "ss", "st", "ST", "ΐ", "ǰ",
           "history", "HISTORY", "hiﬆory",
           "Straße", "STRASSE", "file", "ﬁle", "Mrn",
           "MRN 12", " von ", " VAN ", "Anna", "ANNA", "Ödön", "ǅ"]  # fmt: skip


def fuzz_folding(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = ALPHABET + FOLDING
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 25))) for _ in range(count)]


@pytest.mark.parametrize("source", TRICKY_REGEX)
def test_regex_module_patterns_answer_exactly_as_their_engine(source: str) -> None:
    pattern = regex.compile(source, regex.VERSION1)
    screened = Prefiltered(pattern)
    assert screened.accelerated
    for text in fuzz_folding(3000, seed=len(source)):
        assert spans(screened.finditer(text)) == spans(pattern.finditer(text)), (source, text)


def test_every_built_in_regex_module_rule_gets_a_screen_and_answers_exactly() -> None:
    assert len(REGEX_RULE_PATTERNS) > 50
    assert [p.pattern[:80] for p in REGEX_RULE_PATTERNS if not Prefiltered(p).accelerated] == []
    texts = corpus() + fuzz_folding(300, seed=11)
    for pattern in REGEX_RULE_PATTERNS:
        screened = Prefiltered(pattern)
        for text in texts:
            assert spans(screened.finditer(text)) == spans(pattern.finditer(text)), (pattern.pattern[:80], text[:80])


def test_the_fold_and_case_tables_are_the_regex_engines_own() -> None:
    from biorouter.governance.regex_superset import _all_cases, _cased, _fold, _folds

    points = [point for point in range(0x110000) if not 0xD800 <= point <= 0xDFFF]
    assert _folds() == {point: folded for point in points if (folded := _fold(point)) != chr(point)}
    cased = set(_cased())
    assert [point for point in points if point not in cased and _all_cases(point) != {point}] == []


def test_the_direct_ascii_search_finds_the_bindings_own_first_match() -> None:
    # ASCII text is searched through the binding's entry point beneath ``search`` (no re-encoding,
    # no offset mapping); a binding release that changed it must not change a single answer.
    built_in_combined_sets()
    screens = [screen for screen in alive_screens() if screen._fast is not None]
    texts = [text for text in corpus()[::5] if text.isascii()] + fuzz(100, seed=11)
    texts += ["MRN 00123456, seen 2026-01-02 " * 300, "ok"]
    assert sum(text.isascii() for text in texts) > 50
    assert any(not text.isascii() for text in texts)
    for screen in screens:
        for text in texts:
            found = screen._fast.search(text)
            assert prefilter._earliest(screen._fast, text) == (None if found is None else found.start()), text[:80]
