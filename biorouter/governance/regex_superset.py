"""RE2 supersets for the detector's patterns written for the ``regex`` module (version 1).

Those patterns name Unicode properties (``\\p{Lu}`` for a capitalised name) and some match case-
insensitively with *full* case folding (``(?i)history`` also matches "hiﬆory", ``(?i)ss`` matches
"ß"). The standard library's parser reads them once each property is swapped for a placeholder
character; the translation of :mod:`biorouter.governance.superset` then applies, with every set
(``\\d``, ``\\w``, each property) asked of the ``regex`` engine itself, so it is exactly its own.

Case-sensitive patterns get a positional superset, as standard-library ones do. A pattern with any
case-insensitive part is screened in *folded space*: RE2 reads the text after the engine's own
full case folding, against the pattern with every character replaced by the folded forms of what
it matches; a match of the original is then a match there too, whatever the folding merged or
split. The answer is yes or no (positions in folded text do not index the original).

What the ``regex`` dialect has beyond the standard library's (nested sets, fuzzy matching, named
lists, recursion, other flags) has no translation: such a pattern keeps the plain path.
"""

from __future__ import annotations

import importlib
from bisect import bisect_right
from functools import cache
from typing import Any, Final

import regex

from biorouter.governance.superset import (
    _EXTRA_CASES,
    Untranslatable,
    _case_closure,
    _klass,
    _lowered_from,
    _merge,
    _Piece,
    _runs_of,
    _sre,
    _Translator,
    char_syntax,
    runs_matching,
    sre,
    sre_parse,
)

__all__ = ["fold_text", "regex_superset"]

_regex: Any = importlib.import_module("regex._regex")
_FULL_CASE_FOLDING: Final[int] = importlib.import_module("regex._regex_core").FULL_CASE_FOLDING
_CASE_FLAGS: Final = regex.IGNORECASE | regex.UNICODE | regex.FULLCASE
_ALLOWED_FLAGS: Final = (
    regex.VERSION1 | regex.VERSION0 | regex.UNICODE | regex.FULLCASE | regex.IGNORECASE | regex.MULTILINE | regex.DOTALL
)
_PLACEHOLDER_BASE: Final = 0xF0000  # a private-use plane no shipped pattern uses
# What the regex dialect adds that the standard library would misread rather than refuse.
_UNSUPPORTED: Final = ("(?|", "(?&", "(?R", "(?(DEFINE", "\\L<", "(?V", "(?x", "(?X", "(?w", "(?b", "(?e", "(?r", "(?p")


def fold_text(text: str) -> str:
    """``text`` folded one character at a time (:func:`_fold`), at C speed (``str.translate``)."""
    return text.translate(_folds())


def _fold(point: int) -> str:
    """One character's folded form: the engine's full case fold, each resulting character lowered.

    The engine's fold keeps ``I`` as it is (its Turkic-aware tables; it lowers afterwards), so the
    fold alone would not map ``HISTORY`` and ``history`` to one form.
    """
    return "".join(chr(_sre.unicode_tolower(ord(c))) for c in _regex.fold_case(_FULL_CASE_FOLDING, chr(point)))


def _all_cases(point: int) -> set[int]:
    return {case for case in _regex.get_all_cases(_CASE_FLAGS, point) if case is not None} | {point}


@cache
def _runs_matching(source: str) -> tuple[tuple[int, int], ...]:
    """Code-point runs matched by a one-character ``regex`` pattern (a property, ``\\d``, ``\\w``, ``\\s``)."""
    return runs_matching(regex.compile(f"(?:{source})+", regex.VERSION1))


@cache
def _candidates() -> tuple[int, ...]:
    """The characters Unicode says take part in casing (changed by case mapping or folding, or cased letters)."""
    found: set[int] = set()
    for source in (r"[\p{CWCM}\p{CWCF}]", r"\p{Lu}|\p{Lt}|\p{Ll}"):
        found |= {point for lo, hi in _runs_matching(source) for point in range(lo, hi + 1)}
    return tuple(sorted(found))


@cache
def _folds() -> dict[int, str]:
    """Every code point whose folded form (:func:`_fold`) is not itself, with that form.

    Only the candidates are asked; tests/unit/test_prefilter.py checks every code point.
    """
    return {point: folded for point in _candidates() if (folded := _fold(point)) != chr(point)}


@cache
def _cased() -> frozenset[int]:
    """Code points with a case partner or a folded form: the only ones ``(?i)`` or folding treats specially.

    tests/unit/test_prefilter.py checks every code point outside this set is its own only case.
    """
    folds = _folds()
    found = set(folds) | {ord(folded) for folded in folds.values() if len(folded) == 1}
    found |= {point for point in _candidates() if _all_cases(point) != {point}}
    lowered = _lowered_from()
    found |= set(lowered) | {point for sources in lowered.values() for point in sources} | set(_EXTRA_CASES)
    return frozenset(found)


def _placeholders(source: str) -> tuple[str, list[tuple[bool, str]]]:
    """``source`` with each ``\\p{..}``/``\\P{..}`` replaced by a placeholder character, and what each stands for."""
    if any(marker in source for marker in _UNSUPPORTED):
        raise Untranslatable("a construct of the regex dialect")
    out: list[str] = []
    properties: list[tuple[bool, str]] = []
    index, in_class, class_start = 0, False, 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            following = source[index + 1 : index + 2]
            if following in ("p", "P"):
                end = source.find("}", index)
                if source[index + 2 : index + 3] != "{" or end == -1:
                    raise Untranslatable("a property without braces")
                out.append(chr(_PLACEHOLDER_BASE + len(properties)))
                properties.append((following == "P", source[index + 3 : end]))
                index = end + 1
                continue
            if following in ("m", "M", "G", "K", "X", "R", "N", "L", "Q", "E"):
                raise Untranslatable(f"the escape \\{following}")
            out.append(source[index : index + 2])
            index += 2
            continue
        if in_class:
            if char == "[":
                raise Untranslatable("a nested set (version 1)")
            if source[index : index + 2] in ("--", "&&", "||", "~~"):
                raise Untranslatable("a set operation (version 1)")
            if char == "]" and index > class_start:
                in_class = False
        elif char == "[":
            in_class = True
            class_start = index + 1 + (source[index + 1 : index + 2] == "^")  # a "]" right after "[" is literal
        elif char == "{" and source[index + 1 : index + 2] in ("e", "i", "d", "s"):
            raise Untranslatable("fuzzy matching")
        out.append(char)
        index += 1
    return "".join(out), properties


def _has_ignorecase(items: Any, ignorecase: bool) -> bool:
    """Whether any character or class in the parse tree ``items`` matches case-insensitively."""
    for op, value in items:
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.IN):
            if ignorecase:
                return True
            continue
        inner_case, children = ignorecase, _children(op, value)
        if op is sre.SUBPATTERN:
            _, add_flags, del_flags, _ = value
            inner_case = (ignorecase or bool(add_flags & regex.IGNORECASE)) and not del_flags & regex.IGNORECASE
        if any(_has_ignorecase(child, inner_case) for child in children):
            return True
    return False


def _children(op: Any, value: Any) -> list[Any]:
    """The nested sequences of one parse-tree node."""
    if op is sre.SUBPATTERN:
        return [value[3]]
    if op is sre.BRANCH:
        return list(value[1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return [value[2]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [value[1]]
    if op is sre.ATOMIC_GROUP:
        return [value]
    if op is sre.GROUPREF_EXISTS:
        return [branch for branch in value[1:] if branch is not None]
    return []


class _RegexTranslator(_Translator):
    """The base translation, with sets asked of the ``regex`` engine and properties in place of placeholders."""

    def __init__(self, properties: list[tuple[bool, str]]) -> None:
        super().__init__(0)
        self.properties = properties

    def category_runs(self, name: str) -> tuple[tuple[int, int], ...]:
        return _runs_matching({"DIGIT": r"\d", "SPACE": r"\s", "WORD": r"\w"}[name])

    def set_runs(self, point: int, ignorecase: bool = False) -> list[tuple[int, int]] | None:
        """A placeholder's property as the engine matches it (under ``(?i)``, ``\\p{Lu}`` takes any cased letter)."""
        index = point - _PLACEHOLDER_BASE
        if not 0 <= index < len(self.properties):
            return None
        negated, name = self.properties[index]
        source = f"\\{'P' if negated else 'p'}{{{name}}}"
        try:
            return list(_runs_matching(f"(?i:{source})" if ignorecase else source))
        except regex.error as e:
            raise Untranslatable(f"property {name}: {e}") from e

    def literal(self, point: int, ignorecase: bool) -> set[int]:
        if ignorecase:
            raise Untranslatable("case-insensitive: screened in folded space")
        return {point}


class _FoldedTranslator(_RegexTranslator):
    """Each character set becomes the folded forms of what it matches; every assertion is dropped."""

    def folded(self, runs: list[tuple[int, int]], ignorecase: bool) -> _Piece:
        """The folded forms of the characters in ``runs`` (and, under ``(?i)``, of their case partners)."""
        return _Piece(_folded_forms(tuple(_merge(runs)), ignorecase))

    def item(self, op: Any, value: Any, ignorecase: bool) -> _Piece:
        if op is sre.LITERAL:
            return self.folded(self.literal_runs(value, ignorecase), ignorecase)
        if op is sre.IN:
            runs, negate = self.class_runs_plain(value, ignorecase)
            if negate:
                return _Piece(_ANY_FOLDED)
            return self.folded(runs, ignorecase)
        if op in (sre.NOT_LITERAL, sre.ANY):
            return _Piece(_ANY_FOLDED)
        if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return _Piece("", zero_width=True)
        return super().item(op, value, ignorecase)

    def literal_runs(self, point: int, ignorecase: bool) -> list[tuple[int, int]]:
        named = self.set_runs(point, ignorecase)
        return [(point, point)] if named is None else named

    def class_runs_plain(self, items: list[tuple[Any, Any]], ignorecase: bool) -> tuple[list[tuple[int, int]], bool]:
        """A class's code points before case-insensitivity and negation, and whether it is negated."""
        negate = False
        runs: list[tuple[int, int]] = []
        for op, value in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                runs.extend(self.literal_runs(value, ignorecase))
            elif op is sre.RANGE:
                runs.append(value)
            elif op is sre.CATEGORY:
                category, negated = self.category(value)
                if negated:
                    return [], True  # a complement inside a class: any character (see _ANY_FOLDED)
                runs.extend(category)
            else:
                raise Untranslatable(f"class item {op}")
        return _merge(runs), negate


@cache
def _folded_forms(runs: tuple[tuple[int, int], ...], ignorecase: bool) -> str:
    """RE2 for the folded forms of the characters in ``runs`` (under ``(?i)``, of their case partners too)."""
    cased = _cased()
    if sum(hi - lo + 1 for lo, hi in runs) <= len(cased):
        special = [point for lo, hi in runs for point in range(lo, hi + 1) if point in cased]
    else:
        starts = [lo for lo, _ in runs]
        special = [p for p in cased if (at := bisect_right(starts, p) - 1) >= 0 and p <= runs[at][1]]
    singles: set[int] = set()
    longer: set[str] = set()
    for point in special:
        for case in _all_cases(point) | _case_closure((point,)) if ignorecase else {point}:
            form = _fold(case)
            (singles.add(ord(form)) if len(form) == 1 else longer.add(form))
    body = _merge([*runs, *_runs_of(singles)])  # a character whose fold is itself stays as it is
    parts = [_klass(body, negate=False)] if body else []
    parts += ["".join(char_syntax(ord(c)) for c in form) for form in sorted(longer)]
    return "(?:" + "|".join(parts) + ")" if parts else "[^\\x{0}-\\x{10ffff}]"


# Any one character of the original text, folded: up to three characters of the folded text.
_ANY_FOLDED: Final = "(?s:.{1,3})"


def regex_superset(pattern: regex.Pattern[str]) -> tuple[str, bool]:
    """RE2 syntax for a superset of a ``regex``-module pattern, and whether it is meant for folded text.

    Raises :class:`~biorouter.governance.superset.Untranslatable` for what has no translation here.
    """
    if pattern.flags & ~_ALLOWED_FLAGS:
        raise Untranslatable("flags of the regex dialect")
    source, properties = _placeholders(pattern.pattern)
    flags = pattern.flags & (regex.IGNORECASE | regex.MULTILINE | regex.DOTALL)
    try:
        parsed = sre_parse.parse(source, flags)
    except Exception as e:  # the standard library cannot read it: keep the plain path
        raise Untranslatable(f"unreadable as a standard-library pattern: {e}") from e
    ignorecase = bool(flags & regex.IGNORECASE)
    if not _has_ignorecase(parsed, ignorecase):
        return _RegexTranslator(properties).sequence(parsed, False, outermost=True).text, False
    return _FoldedTranslator(properties).sequence(parsed, ignorecase).text, True
