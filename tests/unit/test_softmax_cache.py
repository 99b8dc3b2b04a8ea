"""Trained heads are cached on disk by their exact training data: a restart loads, a change retrains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biorouter.classify.lexical import LexicalClassifier
from biorouter.classify.softmax import cached

UTTERANCES = {
    "code_generation": ["write a python function that parses fasta", "generate a snakemake rule for bwa"],
    "math_statistics": ["compute the p-value of a t test", "what is the variance of a binomial"],
}


def test_a_second_fit_on_the_same_data_loads_the_first_result(tmp_path: Path) -> None:
    calls = []

    def fit() -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(3, 2), np.ones(2, dtype=np.float32)

    first = cached(tmp_path, [b"data", b"C=1"], fit)
    second = cached(tmp_path, [b"data", b"C=1"], fit)
    assert len(calls) == 1
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    cached(tmp_path, [b"other data", b"C=1"], fit)
    assert len(calls) == 2


def test_a_damaged_cache_file_is_trained_again(tmp_path: Path) -> None:
    result = (np.zeros((2, 2), dtype=np.float32), np.zeros(2, dtype=np.float32))
    cached(tmp_path, [b"k"], lambda: result)
    for path in (tmp_path / "heads").glob("*.npz"):
        path.write_bytes(b"not a zip")
    calls = []
    cached(tmp_path, [b"k"], lambda: calls.append(1) or result)  # type: ignore[func-returns-value]
    assert calls == [1]


def test_the_lexical_model_from_the_cache_answers_exactly_as_a_fresh_fit(tmp_path: Path) -> None:
    fresh = LexicalClassifier.fit(UTTERANCES)
    LexicalClassifier.fit(UTTERANCES, cache_dir=tmp_path)
    loaded = LexicalClassifier.fit(UTTERANCES, cache_dir=tmp_path)
    assert any((tmp_path / "heads").glob("*.npz"))
    text = "write a rule that computes the variance"
    assert loaded.probabilities(text) == fresh.probabilities(text)
