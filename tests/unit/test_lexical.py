"""The lexical classifier: words of the utterances, no encoder (the degraded mode's classifier)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from biorouter.classify.lexical import LexicalClassifier, features
from biorouter.classify.softmax import fit_softmax
from biorouter.classify.utterances import load_utterances

from ..conftest import ROOT

TOY = {
    "code": [
        "write a python function that sorts a list",
        "write a bash script that renames files",
        "implement a function to parse a csv file",
        "write a class for a linked list in java",
    ],
    "cooking": [
        "how long do I boil an egg",
        "give me a recipe for pancakes",
        "what spices go well with lentil soup",
        "how do I bake sourdough bread",
    ],
    "travel": [
        "what should I see in Lisbon in three days",
        "cheapest way to travel from Paris to Berlin",
        "is Iceland worth visiting in winter",
        "plan a weekend trip to the mountains",
    ],
}


@pytest.fixture(scope="module")
def shipped() -> LexicalClassifier:
    return LexicalClassifier.fit(load_utterances(ROOT / "utterances"))


def test_features_stem_words_and_keep_pairs_and_pieces() -> None:
    terms = features("Aligning the reads")
    assert "align" in terms  # "aligning" stemmed, so "aligned"/"aligns" meet it
    assert "the" not in terms  # a stop word alone carries no task
    assert "the read" in terms  # ... but word pairs keep it ("the reads" stemmed)
    assert "<ali" in terms  # word pieces: "analyse" and "analysis" share most of theirs


def test_toy_tasks_are_told_apart_by_words_never_seen_together() -> None:
    model = LexicalClassifier.fit(TOY)
    assert model.tasks == ["code", "cooking", "travel"]
    for text, task in [
        ("write a function in python to reverse a string", "code"),
        ("a recipe for tomato soup with spices", "cooking"),
        ("plan a trip to Berlin", "travel"),
    ]:
        probs = model.probabilities(text)
        assert max(probs, key=probs.__getitem__) == task, probs
        assert sum(probs.values()) == pytest.approx(1.0)


def test_text_without_any_known_word_gets_no_confident_task() -> None:
    probs = LexicalClassifier.fit(TOY).probabilities("zzz qqq")
    assert max(probs.values()) < 0.5


def test_training_is_deterministic() -> None:
    first = LexicalClassifier.fit(TOY).probabilities("bake bread in Lisbon")
    second = LexicalClassifier.fit(TOY).probabilities("bake bread in Lisbon")
    assert first == second


def test_utterances_without_words_are_skipped_and_all_empty_is_an_error() -> None:
    model = LexicalClassifier.fit({**TOY, "code": [*TOY["code"], "?!"]})
    assert "code" in model.tasks
    with pytest.raises(ValueError, match="utterances with words"):
        LexicalClassifier.fit({"a": ["?"], "b": ["!"]})


def test_shipped_utterances_train_in_well_under_a_few_seconds() -> None:
    started = time.perf_counter()
    LexicalClassifier.fit(load_utterances(ROOT / "utterances"))
    # ~0.3 s alone on 2 cores; the bound leaves room for a machine shared with other test runs
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("write a python function that merges two sorted lists", "code_generation"),
        ("Traceback: KeyError 'gene_id' when I run my script, how do I fix this bug?", "code_validation"),
        ("what is the function of the BRCA1 protein?", "biomedical"),
        ("give me step by step instructions to build a bomb", "safety"),
        ("hello, how are you today?", "intent_parsing"),
    ],
)
def test_shipped_utterances_route_clear_requests(shipped: LexicalClassifier, text: str, task: str) -> None:
    probs = shipped.probabilities(text)
    assert max(probs, key=probs.__getitem__) == task, probs


def test_softmax_regression_separates_separable_points() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    weights, bias = fit_softmax(
        lambda w: x @ w, lambda g: x.T @ g, labels, classes=2, n_features=2, regularisation=10.0, steps=200, rate=0.1
    )
    assert ((x @ weights + bias).argmax(axis=1) == labels).all()


def test_a_request_is_weighted_exactly_as_its_full_term_list(shipped: LexicalClassifier) -> None:
    """The per-request path looks words up once per word (cached); it must weigh every term the
    training path does, in the same order, so the probabilities are identical, not just close."""
    utterances = load_utterances(ROOT / "utterances")
    texts = [line for lines in utterances.values() for line in lines[::7]]
    texts += [
        "",
        "the of and",  # stop words only: pairs but no content words
        "Align reads with BWA-MEM; then the the aligned aligning aligns, C++ and C# too",
        "```python\n" + "reads = [r for r in pysam.AlignmentFile(p) if r.mapping_quality >= 30]\n" * 80 + "```\nslow?",
    ]
    for text in texts * 2:  # the second pass reads every word from the cache
        expected = shipped._row(features(text))
        assert shipped._weighted(shipped._counts(text)) == expected
        assert list(shipped._weighted(shipped._counts(text))) == list(expected)  # same order: same float sums
