"""A linear-time RE2 pass in front of a backtracking pattern: where it finds nothing, nothing can match.

Why: a pasted log or 10,000 characters of code match none of the detector's patterns, and the
standard library proves that by trying every pattern at every position (8-10 ms per 10k
characters over all rules, the tail of the decision's latency). RE2 answers the same question
for a *superset* of each pattern (:mod:`biorouter.governance.superset`) in one automaton pass,
20-30 times faster, and most texts stop there. Where the superset does match, the original
pattern runs from the superset's first match (no real match can start earlier), so every answer
is the original pattern's, bit for bit. A pattern with no superset here keeps the plain path;
so does a text RE2 cannot encode (a lone surrogate).

The screens of plain text are also members of one RE2 ``Set``: a single pass over a text says
which of them can match at all, where one search per screen cost about 13 µs per 10,000
characters each (44 screens: 0.6 ms; the set: 15-20 µs). A set that fails
(RE2's DFA can run out of memory; the Python binding then reports no match) is caught by a
sentinel pattern every completed pass matches, and the screens then search one by one.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Final

import regex

from biorouter.governance.regex_superset import fold_text, regex_superset
from biorouter.governance.superset import char_syntax, superset_pattern
from biorouter.lru import remember_last

__all__ = ["LiteralSet", "Prefiltered", "build_all"]

log = logging.getLogger("biorouter.governance")

try:  # a declared dependency; without it every pattern keeps the plain path
    import re2 as _re2
except ImportError:  # pragma: no cover - exercised only on a broken install
    _re2 = None


def _options(*, never_capture: bool) -> Any:
    """RE2 options: silent on refusal (the caller keeps the plain path), room for the big Unicode classes."""
    options = _re2.Options()
    options.log_errors = False
    options.never_capture = never_capture
    options.max_mem = 64 << 20
    return options


_UNBUILT: Any = object()
_BUILDING = threading.RLock()


class Prefiltered:
    """A pattern (standard library or ``regex``) with its RE2 superset in front, or alone where there is none."""

    def __init__(self, pattern: re.Pattern[str] | regex.Pattern[str]) -> None:
        self.pattern = pattern
        self._fast: Any = _UNBUILT  # built on first use (or by build_all() in a warm-up thread)
        self._folded = False  # the superset reads the text after the regex engine's case folding
        self._superset = ""
        self._member: tuple[_Combined, int] | None = None  # this screen's place in a combined set
        _ALL.append(weakref.ref(self))

    def build(self) -> None:
        """Translate and compile the superset now (about 10 ms a pattern; once). :func:`build_all` calls
        this and then adds the screen to a combined set; use that."""
        with _BUILDING:
            if self._fast is not _UNBUILT:
                return
            fast: Any = None
            if _re2 is not None:
                try:
                    if isinstance(self.pattern, re.Pattern):
                        superset = superset_pattern(self.pattern)
                    else:
                        superset, self._folded = regex_superset(self.pattern)
                    fast = _re2.compile(superset, _options(never_capture=True))
                    self._superset = superset
                except Exception as e:  # any refusal means the plain path, never a wrong answer
                    log.debug("pattern keeps the plain path (%s): %.80s", e, self.pattern.pattern)
            self._fast = fast

    @property
    def accelerated(self) -> bool:
        """Whether an RE2 superset screens texts for this pattern."""
        if self._fast is _UNBUILT:
            build_all()  # as on first use: built with the others, so it joins their combined set
        return self._fast is not None

    def first_possible(self, text: str) -> int | None:
        """Where the earliest match could start, or ``None`` when none can."""
        if self._fast is _UNBUILT:
            build_all()  # this screen, every other one not built yet, and their combined sets
        if self._fast is None:
            return 0
        try:
            if self._folded:  # a position in folded text does not index the original: yes or no only
                return None if _earliest(self._fast, _folded(text)) is None else 0
            member = self._member
            if member is not None:  # one pass of the combined set answers for every member
                possible = member[0].possible(text)
                if possible is not None and member[1] not in possible:
                    return None
            return _earliest(self._fast, text)
        except Exception:  # e.g. a lone surrogate RE2 cannot encode: the plain path decides
            return 0

    def search(self, text: str) -> Any:
        start = self.first_possible(text)
        return None if start is None else self.pattern.search(text, start)

    def finditer(self, text: str) -> Iterator[Any]:
        start = self.first_possible(text)
        return iter(()) if start is None else self.pattern.finditer(text, start)

    def findall(self, text: str) -> list[Any]:
        start = self.first_possible(text)
        return [] if start is None else self.pattern.findall(text, start)


_ALL: list[weakref.ref[Prefiltered]] = []

# The binding's own entry point under ``search`` (google-re2 1.1): None when a release lacks it.
_UNANCHORED: Any = getattr(getattr(_re2, "_Anchor", None), "UNANCHORED", None)


def _earliest(fast: Any, text: str) -> int | None:
    """Where ``fast`` first matches in ``text`` (a character offset), or None.

    The binding's ``search`` re-encodes the text and maps byte offsets back to characters with a
    pass over the text up to the match (about 0.1 ms per 10,000 characters of pasted code, per
    screen that can match). For ASCII text (``str.isascii`` is a flag, not a scan) byte and
    character offsets are the same, so RE2 is asked directly.
    """
    if _UNANCHORED is not None and text.isascii():
        spans = fast._regexp.Match(_UNANCHORED, text.encode("ascii"), 0, len(text))
        start = int(spans[0][0])
        return None if start < 0 else start
    found = fast.search(text)
    return None if found is None else int(found.start())


class _Combined:
    """Some screens' supersets in one RE2 Set: one pass over a text names the screens that can match.

    The last pattern is a sentinel (``\\z``) that every completed pass matches: a pass without it
    failed (the binding does not report RE2's errors), and :meth:`possible` answers ``None``.
    """

    _REMEMBERED = 16

    def __init__(self, screens: list[Prefiltered]) -> None:
        self.members: list[Prefiltered] = []
        self._set: Any = _re2.Set.SearchSet(_options(never_capture=False))
        for screen in screens:
            try:
                self._set.Add(screen._superset)
            except Exception:  # not in the set: that screen searches on its own
                continue
            self.members.append(screen)
        self._sentinel = len(self.members)
        self._set.Add(r"\z")
        self._set.Compile()
        # A text's answer is kept for the next screens that ask (each rule asks of the same text);
        # the text itself is kept beside it, so an identity check cannot meet a recycled object.
        self._recent: dict[int, tuple[str, frozenset[int] | None]] = {}

    def possible(self, text: str) -> frozenset[int] | None:
        """Indexes of the members whose supersets match somewhere in ``text``; None: ask each one."""
        recent = self._recent.get(id(text))
        if recent is not None and recent[0] is text:
            return recent[1]
        try:
            found = self._set.Match(text) or ()
        except Exception:  # e.g. a lone surrogate
            found = ()
        answer = frozenset(found).difference((self._sentinel,)) if self._sentinel in found else None
        if len(self._recent) >= self._REMEMBERED:
            self._recent.clear()
        self._recent[id(text)] = (text, answer)
        return answer


# Screens per combined set. Only screens of plain text join sets: the 44 built-in ones in one set take
# 3-22 µs on a request-sized text once its DFA is warm. The folded ones (full case-fold alternations,
# big Unicode classes) outgrow a set's DFA cache: 54 in one set took 0.9 ms on a paragraph against
# 0.1 ms one by one, and sets of 8 saved nothing over a realistic mix (measured per request shape).
_SET_SIZE: Final = 64


def build_all() -> None:
    """Build every screen made so far, and one combined set for those built by this call (the
    proxy's warm-up builds them all at once, so no request pays for it, and one set holds them)."""
    with _BUILDING:
        alive = [screen for screen in (ref() for ref in _ALL) if screen is not None]
        _ALL[:] = [weakref.ref(screen) for screen in alive]
        fresh = [screen for screen in alive if screen._fast is _UNBUILT]
        for screen in fresh:
            screen.build()
        screens = [screen for screen in fresh if screen._fast is not None and not screen._folded]
        for first in range(0, len(screens), _SET_SIZE):
            try:
                combined = _Combined(screens[first : first + _SET_SIZE])
            except Exception as e:  # each screen keeps searching on its own
                log.debug("screens stay separate: %s", e)
                continue
            for index, screen in enumerate(combined.members):
                screen._member = (combined, index)


@remember_last
def _folded(text: str) -> str:
    """The regex engine's case folding of ``text`` (kept for the last text: every rule asks of one)."""
    return fold_text(text)


class LiteralSet:
    """Which of some literal strings occur in a text (as substrings, overlaps included), in one RE2 pass.

    ``None`` from :meth:`present` means RE2 could not answer (not installed, or a text it cannot
    encode): the caller asks its own exact fallback.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(sorted({word for word in words if word}))
        self._set: Any = None
        if _re2 is None or not self.words:
            return
        try:
            found = _re2.Set.SearchSet(_options(never_capture=False))
            for word in self.words:
                found.Add("".join(char_syntax(ord(character)) for character in word))
            found.Compile()
            self._set = found
        except Exception as e:  # any refusal means the caller's exact path
            log.debug("literal set keeps the plain path: %s", e)
            self._set = None

    def present(self, text: str) -> frozenset[str] | None:
        if self._set is None:
            return None
        try:
            indexes = self._set.Match(text)
        except Exception:  # e.g. a lone surrogate RE2 cannot encode
            return None
        return frozenset(self.words[index] for index in indexes or ())  # None when nothing occurs
