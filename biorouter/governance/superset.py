"""RE2 syntax for a superset of a standard-library pattern: it matches wherever the pattern does.

Written from the standard library's own parse of the pattern, so it cannot drift from it:
assertions (``\\b``, ``^``, lookarounds) are dropped (dropping a condition only widens) unless an
equivalent or wider RE2 form exists (a ``\\b`` beside ASCII word characters; a one-character
negative lookaround at the pattern's very start or end, read by consuming the neighbour), a
backreference becomes its group's pattern, ``\\d``, ``\\s``, ``\\w`` become the exact Unicode sets
the engine uses (RE2's own are ASCII), and ``(?i)`` is expanded into the exact classes the
engine matches (RE2 is never asked to fold case). :mod:`biorouter.governance.prefilter` runs it.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import numpy as np

__all__ = ["Untranslatable", "char_syntax", "runs_matching", "superset_pattern"]

# The standard library's own parser, opcodes and case tables (private modules, stable across 3.11-3.13;
# tests/unit/test_prefilter.py checks every shipped pattern against them).
sre: Any = importlib.import_module("re._constants")
sre_parse: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("_sre")
_EXTRA_CASES: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES

_RE2_MAX_REPEAT: Final = 1000  # RE2 refuses counted repetitions above this
_UNICODE_TOP: Final = 0x10FFFF


@cache
def _categories(ascii_only: bool) -> dict[str, tuple[tuple[int, int], ...]]:
    """The code points of ``\\d``, ``\\s`` and ``\\w`` as the standard library matches them on ``str``.

    Asked of the engine itself (its runs over every code point but surrogates, which UTF-8 cannot
    hold), so the sets are exactly its own.
    """
    flags = re.ASCII if ascii_only else 0
    return {
        name: runs_matching(re.compile(pattern, flags))
        for name, pattern in (("DIGIT", r"\d+"), ("SPACE", r"\s+"), ("WORD", r"\w+"))
    }


def runs_matching(pattern: Any) -> tuple[tuple[int, int], ...]:
    """The code-point runs a compiled ``X+`` pattern (either engine) matches, over every code point but
    the surrogates (which UTF-8 cannot hold)."""
    text = _utf8_code_points().tobytes().decode("utf-32-le")
    blocks = [(0, text[:0xD800]), (0xE000, text[0xD800:])]
    return tuple(
        (first + match.start(), first + match.end() - 1) for first, block in blocks for match in pattern.finditer(block)
    )


def char_syntax(point: int) -> str:
    """One code point in RE2 syntax (escaped unless an ASCII letter or digit)."""
    character = chr(point)
    if character.isascii() and character.isalnum():
        return character
    return f"\\x{{{point:x}}}"


def _runs_of(points: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for point in sorted(set(points)):
        if runs and point == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))
    return runs


def _merge(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(runs):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _class_body(runs: list[tuple[int, int]]) -> str:
    return "".join(char_syntax(lo) if lo == hi else f"{char_syntax(lo)}-{char_syntax(hi)}" for lo, hi in runs)


def _klass(runs: list[tuple[int, int]], negate: bool) -> str:
    return _klass_text(tuple(runs), negate)


@cache
def _klass_text(runs: tuple[tuple[int, int], ...], negate: bool) -> str:
    """An RE2 class of ``runs`` (the same big classes recur: ``\\w``, a property, a case closure)."""
    merged = [(max(lo, 0), min(hi, _UNICODE_TOP)) for lo, hi in _merge(runs)]
    merged = [run for part in merged for run in _without_surrogates(part)]
    if not merged:
        return "(?s:.)" if negate else "[^\\x{0}-\\x{10ffff}]"
    return f"[{'^' if negate else ''}{_class_body(merged)}]"


def _without_surrogates(run: tuple[int, int]) -> list[tuple[int, int]]:
    lo, hi = run
    parts = [(lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)]
    return [(a, b) for a, b in parts if a <= b]


def _utf8_code_points() -> np.ndarray:
    """Every code point but the surrogates (which UTF-8 cannot hold), in order."""
    points = np.arange(_UNICODE_TOP + 1, dtype=np.uint32)
    return points[(points < 0xD800) | (points > 0xDFFF)]


@cache
def _lowered_from() -> dict[int, tuple[int, ...]]:
    """For each code point some other code point lowers to (the standard library's ``tolower``), those others.

    ``str.lower`` over all code points at once finds the candidates (its mapping is the simple one
    but for U+0130, whose full lowering is two characters); ``tolower`` confirms each of them.
    """
    points = _utf8_code_points()
    text = points.tobytes().decode("utf-32-le").replace("\u0130", "i")
    lowered = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32)
    sources: dict[int, list[int]] = {}
    for point in [0x130, *points[lowered != points].tolist()]:
        lower = _sre.unicode_tolower(point)
        if lower != point:
            sources.setdefault(lower, []).append(point)
    return {lower: tuple(sorted(set(found))) for lower, found in sources.items()}


_MAX_FOLDED_CLASS: Final = 70_000  # code points; a bigger class under IGNORECASE keeps the plain path


def _case_closure(points: Iterable[int]) -> set[int]:
    """Every code point ``(?i)`` lets match one of ``points``: its lowering is theirs or one of their extra cases."""
    lowered: set[int] = set()
    for point in points:
        lower = _sre.unicode_tolower(point)
        lowered.add(lower)
        lowered.update(_EXTRA_CASES.get(lower, ()))
    closure = set(points) | lowered
    sources = _lowered_from()
    for lower in lowered:
        closure.update(sources.get(lower, ()))
    return closure


_ASCII_WORD: Final = frozenset(ord(c) for c in string.ascii_letters + string.digits + "_")


@dataclass(frozen=True)
class _Piece:
    """A translated node: its RE2 text and what is known of its first and last characters."""

    text: str
    first: frozenset[int] | None = None  # None: unknown, or the piece can match nothing
    last: frozenset[int] | None = None
    zero_width: bool = False
    nullable: bool = False  # can match the empty string (its edges then do not bound its neighbours')
    guard: str | None = None  # "behind"/"ahead": a one-character negative lookaround, excluding ``excluded``
    excluded: list[tuple[int, int]] | None = None


def _small(points: set[int]) -> frozenset[int] | None:
    return frozenset(points) if len(points) <= 4096 else None


class Untranslatable(ValueError):
    """The pattern uses something with no RE2 superset here; it keeps the plain path."""


class _Translator:
    """The standard library's parse tree, written out as RE2 syntax that matches at least as much.

    RE2 is never asked to fold case: ``(?i)`` is expanded here into the exact classes the standard
    library matches, so RE2's own (slightly different) folding cannot narrow anything.
    """

    def __init__(self, flags: int) -> None:
        if flags & re.ASCII and flags & re.IGNORECASE:
            raise Untranslatable("ASCII case folding")
        self.ascii_only = bool(flags & re.ASCII)
        self.groups: dict[int, _Piece] = {}

    def category(self, category: Any) -> tuple[list[tuple[int, int]], bool]:
        """(runs, negated) of one ``CATEGORY_*`` constant."""
        name = str(category).removeprefix("CATEGORY_")
        negated = name.startswith("NOT_")
        base = name.removeprefix("NOT_")
        if base not in ("DIGIT", "SPACE", "WORD"):
            raise Untranslatable(f"category {category}")
        return list(self.category_runs(base)), negated

    def category_runs(self, name: str) -> tuple[tuple[int, int], ...]:
        """The code points of ``\\d``, ``\\s`` or ``\\w`` (``name`` DIGIT, SPACE, WORD) as the engine matches them."""
        return _categories(self.ascii_only)[name]

    def literal(self, point: int, ignorecase: bool) -> set[int]:
        return _case_closure((point,)) if ignorecase else {point}

    def set_runs(self, point: int) -> list[tuple[int, int]] | None:
        """The code points a placeholder character stands for (a subclass's Unicode property), else None."""
        return None

    def klass(self, items: list[tuple[Any, Any]], ignorecase: bool) -> _Piece:
        runs, negate = self.class_runs(items, ignorecase)
        small = not negate and _width(runs) <= 4096
        first = _small({p for lo, hi in runs for p in range(lo, hi + 1)}) if small else None
        return _Piece(_klass(runs, negate), first, first)

    def class_runs(self, items: list[tuple[Any, Any]], ignorecase: bool) -> tuple[list[tuple[int, int]], bool]:
        """The code points a class names (before its negation), and whether it is negated."""
        negate = False
        points: set[int] = set()
        runs: list[tuple[int, int]] = []
        complements: list[list[tuple[int, int]]] = []
        for op, value in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                named = self.set_runs(value)
                if named is not None:
                    runs.extend(named)
                else:
                    points.update(self.literal(value, ignorecase))
            elif op is sre.RANGE:
                lo, hi = value
                if ignorecase:
                    if hi - lo > _MAX_FOLDED_CLASS:
                        raise Untranslatable("a very wide range under IGNORECASE")
                    points.update(_case_closure(range(lo, hi + 1)))
                else:
                    runs.append((lo, hi))
            elif op is sre.CATEGORY:
                category, negated = self.category(value)
                (complements.append(category) if negated else runs.extend(category))
            else:
                raise Untranslatable(f"class item {op}")
        runs = _merge([*runs, *_runs_of(points)])
        for complement in complements:  # [\D...] = everything outside the category, plus the rest
            runs = _merge([*runs, *_complement(complement)])
        return runs, negate

    def excluded_neighbour(self, value: Any, ignorecase: bool) -> tuple[str, list[tuple[int, int]]] | None:
        """For ``(?<!C)`` / ``(?!C)`` with ``C`` one character (a class or a literal): ("behind" or "ahead",
        the code points of ``C``); else None."""
        direction, inner = value
        if len(inner) != 1:
            return None
        op, item = inner[0]
        if op is sre.IN:
            runs, negate = self.class_runs(item, ignorecase)
        elif op is sre.LITERAL:
            runs, negate = _runs_of(self.literal(item, ignorecase)), False
        else:
            return None
        if negate:
            return None
        return ("behind" if direction < 0 else "ahead"), runs

    def sequence(self, items: Any, ignorecase: bool, *, outermost: bool = False) -> _Piece:
        pieces = [self.item(op, value, ignorecase) for op, value in items]
        texts = []
        for index, piece in enumerate(pieces):
            after = _edge(pieces[index + 1 :], first=True)
            before = _edge(pieces[:index], first=False)
            word_after = after is not None and after <= _ASCII_WORD
            word_before = before is not None and before <= _ASCII_WORD
            if piece.text == "\\b":  # kept only where RE2's ASCII boundary is at least as permissive
                if not (word_after or word_before):
                    continue
            elif piece.excluded is not None:
                texts.append(self.lookaround(piece, index, len(pieces), word_after, word_before, outermost))
                continue
            texts.append(piece.text)
        nullable = all(piece.nullable or piece.zero_width for piece in pieces)
        return _Piece("".join(texts), _edge(pieces, first=True), _edge(pieces, first=False), nullable=nullable)

    @staticmethod
    def lookaround(piece: _Piece, index: int, count: int, word_after: bool, word_before: bool, outermost: bool) -> str:
        """RE2 for a one-character negative lookaround, at least as permissive as it (empty: dropped)."""
        assert piece.excluded is not None
        covers_words = all(any(lo <= point <= hi for lo, hi in piece.excluded) for point in _ASCII_WORD)
        if covers_words and ((piece.guard == "behind" and word_after) or (piece.guard == "ahead" and word_before)):
            return "\\b"  # no word character on one side and an ASCII one on the other: a boundary in either engine
        # The pattern's very first or last condition may read its neighbour by consuming it: the match
        # then starts one character early (still no later than the real one) or ends one late.
        if outermost and piece.guard == "behind" and index == 0:
            return f"(?:\\A|{_klass(piece.excluded, negate=True)})"
        if outermost and piece.guard == "ahead" and index == count - 1:
            return f"(?:{_klass(piece.excluded, negate=True)}|\\z)"
        return ""

    def item(self, op: Any, value: Any, ignorecase: bool) -> _Piece:
        if op is sre.LITERAL:
            named = self.set_runs(value)
            if named is not None:
                return self.klass([(sre.LITERAL, value)], ignorecase)
            points = self.literal(value, ignorecase)
            text = char_syntax(value) if len(points) == 1 else _klass(_runs_of(points), negate=False)
            return _Piece(text, frozenset(points), frozenset(points))
        if op is sre.NOT_LITERAL:
            return _Piece(_klass(_runs_of(self.literal(value, ignorecase)), negate=True))
        if op is sre.ANY:
            return _Piece("(?s:.)")  # with or without DOTALL: the wider
        if op is sre.IN:
            return self.klass(value, ignorecase)
        if op is sre.BRANCH:
            branches = [self.sequence(branch, ignorecase) for branch in value[1]]
            return _Piece(
                "(?:" + "|".join(branch.text for branch in branches) + ")",
                _union(branch.first for branch in branches),
                _union(branch.last for branch in branches),
                nullable=any(branch.nullable for branch in branches),
            )
        if op is sre.SUBPATTERN:
            group, add_flags, del_flags, inner = value
            if add_flags & re.IGNORECASE:
                ignorecase = True
            if del_flags & re.IGNORECASE:
                ignorecase = False
            piece = self.sequence(inner, ignorecase)
            if group is not None:
                self.groups[group] = piece
            return _Piece(f"(?:{piece.text})", piece.first, piece.last, nullable=piece.nullable)
        if op is sre.ATOMIC_GROUP:
            piece = self.sequence(value, ignorecase)
            return _Piece(f"(?:{piece.text})", piece.first, piece.last, nullable=piece.nullable)
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, inner = value
            piece = self.sequence(inner, ignorecase)
            body = f"(?:{piece.text})"
            if low > _RE2_MAX_REPEAT:
                text = f"{body}*"
            elif high is sre.MAXREPEAT or high > _RE2_MAX_REPEAT:
                text = f"{body}{{{low},}}"
            else:
                text = f"{body}{{{low},{high}}}"
            return _Piece(text, piece.first, piece.last, nullable=low == 0 or piece.nullable)
        if op is sre.AT:
            return _Piece("\\b" if value is sre.AT_BOUNDARY else "", zero_width=True)
        if op is sre.ASSERT_NOT:  # dropped (only widens), or kept as a \b where that is implied
            neighbour = self.excluded_neighbour(value, ignorecase)
            if neighbour is None:
                return _Piece("", zero_width=True)
            return _Piece("", zero_width=True, guard=neighbour[0], excluded=neighbour[1])
        if op is sre.ASSERT:
            return _Piece("", zero_width=True)  # dropping a condition only widens
        if op is sre.GROUPREF:
            if value not in self.groups:
                raise Untranslatable(f"backreference to group {value} before it closes")
            return self.groups[value]
        if op is sre.GROUPREF_EXISTS:
            _, yes, no = value
            yes_piece = self.sequence(yes, ignorecase)
            no_text = self.sequence(no, ignorecase).text if no is not None else ""
            return _Piece(f"(?:{yes_piece.text}|{no_text})", nullable=True)
        raise Untranslatable(f"operator {op}")


def _width(runs: list[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in runs)


def _complement(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps, previous = [], -1
    for lo, hi in _merge(runs):
        if lo > previous + 1:
            gaps.append((previous + 1, lo - 1))
        previous = hi
    if previous < _UNICODE_TOP:
        gaps.append((previous + 1, _UNICODE_TOP))
    return gaps


def _union(edges: Iterable[frozenset[int] | None]) -> frozenset[int] | None:
    total: set[int] = set()
    for edge in edges:
        if edge is None:
            return None
        total |= edge
    return frozenset(total)


def _edge(pieces: list[_Piece], *, first: bool) -> frozenset[int] | None:
    """The characters a match of ``pieces`` can start (or end) with; None when unknown or when it can be empty.

    A piece that may match nothing (``x?``) lets the next one's characters be first too.
    """
    found: set[int] = set()
    for piece in pieces if first else reversed(pieces):
        if piece.zero_width:
            continue
        edge = piece.first if first else piece.last
        if edge is None:
            return None
        found |= edge
        if not piece.nullable:
            return frozenset(found)
    return None


def superset_pattern(pattern: re.Pattern[str]) -> str:
    """RE2 syntax for a pattern that matches wherever ``pattern`` does (and possibly more).

    Raises ``ValueError`` for what has no translation here.
    """
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    return _Translator(pattern.flags).sequence(parsed, bool(pattern.flags & re.IGNORECASE), outermost=True).text
