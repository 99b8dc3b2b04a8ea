"""A lexical task classifier: words and word pieces of the utterances, no encoder.

It exists for two reasons. When the encoder cannot be loaded or fails on a request (a missing
model folder, an embeddings endpoint that is down), the :class:`~biorouter.classify.classifier.TaskClassifier`
routes with this instead of sending every request to the default route: degraded, visible in
the Decision and the metrics, but still routed by task. And it can be a term of the normal blend
(``classifier.lexical_weight``), off by default for the reason below.

The model is a multinomial (softmax) logistic regression over TF-IDF features (stemmed words
without stop words, word pairs, and 4-character pieces of words so ``analyse``/``analysis`` meet),
trained on ``utterances/*.txt`` when first needed: numpy only, deterministic (zero start, full batch),
about half a second for 1,000 utterances. On the external evaluation set it scores 77.8%
against the embeddings' 91.4% (``biorouter eval --classifier lexical``), which is why it is a
fallback. Blended into the embeddings' scores at ``lexical_weight`` 0.5 (the default) it adds a
little on every set measured; alone it is what routes while the encoder is down.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from biorouter.classify.softmax import cached, fit_softmax

__all__ = ["LexicalClassifier", "features"]

_WORD = re.compile(r"[a-z0-9]+(?:\+\+|#)?")
_STOP = frozenset(
    """a an the of to in on for and or is are was were be been it this that these those i me my we our you your
    he she they them his her its with as at by from do does did can could would should will shall may might
    must have has had not no so if then than there here what which who whom how why when where please just
    also some any all each into about""".split()  # noqa: SIM905 (80 words: a list literal would be unreadable)
)
_SUFFIXES = (
    "ization", "isation", "ations", "ation", "ments", "ment", "ings", "ing", "ness",
    "ities", "ity", "ies", "ied", "ers", "er", "ed", "es", "s", "ly",
)  # fmt: skip
_PIECE = 4
_MAX_CHARS = 4000  # long pasted text: its start and end carry the intent (as for the encoder)
_REMEMBERED_WORDS = 1 << 16  # per model: a word's own index and its pieces' indexes


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A crude suffix strip: enough for ``aligning``/``aligned``/``aligns`` to share a feature.

    Cached: it runs for every word of every request on the proxy's event loop, and requests
    reuse a small vocabulary (the cache took the lexical signal from ~1.2 to ~0.5 ms a request).
    """
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> list[str]:
    """The stemmed words of ``text`` (of its start and end only, when it is long)."""
    if len(text) > _MAX_CHARS:
        text = text[: _MAX_CHARS // 4] + " " + text[-(_MAX_CHARS - _MAX_CHARS // 4) :]
    return [_stem(w) for w in _WORD.findall(text.lower())]


def _pieces(word: str) -> list[str]:
    padded = f"<{word}>"
    return [padded[i : i + _PIECE] for i in range(max(1, len(padded) - _PIECE + 1))]


def features(text: str) -> list[str]:
    """The terms of ``text``: content words (stemmed), adjacent word pairs, and word pieces."""
    words = _words(text)
    content = [w for w in words if w not in _STOP]
    terms = list(content)
    terms += [f"{a} {b}" for a, b in itertools.pairwise(words)]
    for word in content:
        terms += _pieces(word)
    return terms


class _Sparse:
    """Rows of L2-normalised TF-IDF weights, stored by row and by column for two fast products.

    Every row and every column holds at least one value (a vocabulary term occurs in some
    utterance; an utterance without known terms is dropped before), so ``np.add.reduceat`` over
    the row and column starts gives exact sums in one call each.
    """

    def __init__(self, rows: list[dict[int, float]], n_features: int) -> None:
        self.n = len(rows)
        counts = np.array([len(r) for r in rows], dtype=np.int64)
        self.row_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.indices = np.fromiter((j for r in rows for j in r), dtype=np.int64, count=int(counts.sum()))
        self.data = np.fromiter((v for r in rows for v in r.values()), dtype=np.float32, count=int(counts.sum()))
        row_of = np.repeat(np.arange(self.n), counts)
        order = np.argsort(self.indices, kind="stable")
        self.col_rows = row_of[order]
        self.col_data = self.data[order]
        self.col_starts = np.searchsorted(self.indices[order], np.arange(n_features))

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """``X @ weights`` for a dense (features, classes) matrix."""
        result: np.ndarray = np.add.reduceat(weights[self.indices] * self.data[:, None], self.row_starts, axis=0)
        return result

    def tdot(self, grads: np.ndarray) -> np.ndarray:
        """``X.T @ grads`` for a dense (rows, classes) matrix."""
        result: np.ndarray = np.add.reduceat(grads[self.col_rows] * self.col_data[:, None], self.col_starts, axis=0)
        return result


class LexicalClassifier:
    """Task probabilities from the words of a request; built with :meth:`fit`, then read-only (thread-safe:
    its only state after that is a word cache, whose dict operations are atomic)."""

    def __init__(self, tasks: list[str], vocabulary: dict[str, int], idf: np.ndarray, weights: np.ndarray) -> None:
        self.tasks = tasks
        self._vocabulary = vocabulary
        self._idf = idf
        self._idf_values: list[float] = [float(v) for v in idf]  # per-term lookups without numpy scalars
        self._weights = weights  # (features + 1 bias row, tasks)
        self._word_terms: dict[str, tuple[int | None, tuple[int, ...]]] = {}

    @classmethod
    def fit(
        cls,
        utterances: Mapping[str, Sequence[str]],
        *,
        regularisation: float = 10.0,
        steps: int = 50,
        cache_dir: Path | None = None,
    ) -> LexicalClassifier:
        """Train on every task's utterances (L2-regularised softmax regression, Adam, full batch).

        ``regularisation`` is the inverse strength C (larger: fits the utterances more tightly).
        ``cache_dir``: keep the trained weights there, keyed by the exact training matrix.
        """
        tasks = sorted(utterances)
        texts = [text for task in tasks for text in utterances[task]]
        labels = np.array([i for i, task in enumerate(tasks) for _ in utterances[task]])
        kept = [(terms, label) for text, label in zip(texts, labels, strict=True) if (terms := features(text))]
        if not kept:
            raise ValueError("the lexical classifier needs utterances with words in them")
        documents = [terms for terms, _ in kept]
        labels = np.array([label for _, label in kept])
        frequency: dict[str, int] = {}
        for terms in documents:
            for term in set(terms):
                frequency[term] = frequency.get(term, 0) + 1
        vocabulary = {term: i for i, term in enumerate(sorted(frequency))}
        n = len(documents)
        idf = np.array([math.log((1 + n) / (1 + frequency[t])) + 1 for t in sorted(frequency)])
        model = cls(tasks, vocabulary, idf, np.zeros((len(vocabulary) + 1, len(tasks)), dtype=np.float32))
        x = _Sparse([model._row(terms) for terms in documents], len(vocabulary))
        key = (
            "\n".join(tasks).encode(),
            "\n".join(sorted(frequency)).encode(),
            x.indices.tobytes(),
            x.data.tobytes(),
            x.row_starts.tobytes(),
            labels.tobytes(),
            f"lexical C={regularisation} steps={steps} rate=0.1".encode(),
        )
        weights, bias = cached(
            cache_dir,
            key,
            lambda: fit_softmax(
                x.dot,
                x.tdot,
                labels,
                classes=len(tasks),
                n_features=len(vocabulary),
                regularisation=regularisation,
                steps=steps,
                rate=0.1,
            ),
        )
        model._weights = np.vstack([weights, bias])
        return model

    def _row(self, terms: list[str]) -> dict[int, float]:
        counts: dict[int, float] = {}
        for term in terms:
            index = self._vocabulary.get(term)
            if index is not None:
                counts[index] = counts.get(index, 0.0) + 1.0
        return self._weighted(counts)

    def _known_terms(self, word: str) -> tuple[int | None, tuple[int, ...]]:
        """A content word's vocabulary index and its pieces' (those in the vocabulary), remembered per model."""
        known = self._word_terms.get(word)
        if known is None:
            vocabulary = self._vocabulary
            pieces = (vocabulary.get(piece) for piece in _pieces(word))
            known = (vocabulary.get(word), tuple(index for index in pieces if index is not None))
            if len(self._word_terms) >= _REMEMBERED_WORDS:
                self._word_terms.clear()
            self._word_terms[word] = known
        return known

    def _counts(self, text: str) -> Mapping[int, int]:
        """What ``_row`` counts over ``features(text)``, in the same order, without building every term.

        Why: this runs for every request on the proxy's event loop, and most of ``features``' terms
        are word pieces, which depend on the word alone; looking them up once per word (not per
        request) took the lexical signal from about 0.35 to about 0.21 ms a request. The order of
        the counts is ``features``' own (content words, pairs, pieces), so the probabilities are
        the same to the last bit.
        """
        words = _words(text)
        content = [self._known_terms(w) for w in words if w not in _STOP]
        vocabulary = self._vocabulary
        found = [index for index, _ in content if index is not None]
        found += [index for a, b in itertools.pairwise(words) if (index := vocabulary.get(f"{a} {b}")) is not None]
        found += itertools.chain.from_iterable(pieces for _, pieces in content)
        return Counter(found)  # counted in C, keyed in first-seen order

    def _weighted(self, counts: Mapping[int, float]) -> dict[int, float]:
        idf = self._idf_values
        weighted = {j: math.log1p(c) * idf[j] for j, c in counts.items()}
        norm = math.sqrt(sum(v * v for v in weighted.values())) or 1.0
        return {j: v / norm for j, v in weighted.items()}

    def probabilities(self, text: str) -> dict[str, float]:
        """Every task's probability for ``text`` (summing to 1; with no known word, the prior kept in the bias)."""
        row = self._weighted(self._counts(text))
        logits = self._weights[-1].copy()
        if row:  # one product over the request's terms instead of a numpy call per term
            logits += np.fromiter(row.values(), dtype=self._weights.dtype) @ self._weights[list(row)]
        logits -= logits.max()
        exp = np.exp(logits)
        probs = exp / exp.sum()
        return {task: float(p) for task, p in zip(self.tasks, probs, strict=True)}
