"""Softmax (multinomial logistic) regression in numpy, for the classifier's two small learned parts.

Both the head over utterance embeddings (:mod:`biorouter.classify.classifier`) and the lexical classifier
(:mod:`biorouter.classify.lexical`) are trained at load time on ``utterances/*.txt``, so training must be
quick, dependency-free and deterministic: a zero start, full-batch Adam for a fixed number of
steps, L2 penalty on the weights (not the bias). The caller supplies the two matrix products,
so a dense matrix and a sparse one share the same loop.

Training is deterministic, so :func:`cached` keeps its result on disk keyed by a hash of the
exact training data and settings: a restart with unchanged utterances loads both models instead
of training them (about a second of a proxy's start-up on 2 cores). Any change to the data or the
settings is a new key; a damaged cache file is trained again.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from biorouter.files import replaced_atomically

__all__ = ["cached", "fit_softmax", "softmax"]

log = logging.getLogger("biorouter.softmax")

_CACHE_FORMAT = b"softmax-v1"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities (numerically safe for large logits)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def fit_softmax(
    dot: Callable[[np.ndarray], np.ndarray],
    tdot: Callable[[np.ndarray], np.ndarray],
    labels: np.ndarray,
    *,
    classes: int,
    n_features: int,
    regularisation: float,
    steps: int,
    rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(n_features, classes)`` and bias ``(classes,)`` minimising the mean cross-entropy.

    ``dot(w)`` must return ``X @ w`` and ``tdot(g)`` ``X.T @ g`` for the training matrix ``X``
    (one row per example, label ``labels[i]``). ``regularisation`` is C, the inverse penalty
    strength, as in scikit-learn: the penalty is ``|W|^2 / (2 C n)``.
    """
    n = len(labels)
    targets = np.eye(classes, dtype=np.float32)[labels]
    params = [np.zeros((n_features, classes), dtype=np.float32), np.zeros(classes, dtype=np.float32)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    penalty = 1.0 / (regularisation * n)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, steps + 1):
        error = (softmax(dot(params[0]) + params[1]) - targets) / n
        grads = (tdot(error) + penalty * params[0], error.sum(axis=0))
        for param, grad, m, v in zip(params, grads, first, second, strict=True):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return params[0], params[1]


def cached(
    cache_dir: Path | None, key_parts: Iterable[bytes], fit: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """``fit()``'s weights and bias, from ``<cache_dir>/heads/<hash>.npz`` when trained before on the same data.

    ``key_parts`` must determine the result completely (training data, labels, settings).
    Without a ``cache_dir`` this is ``fit()``.
    """
    if cache_dir is None:
        return fit()
    digest = hashlib.sha256(_CACHE_FORMAT)
    for part in key_parts:
        digest.update(hashlib.sha256(part).digest())
    path = cache_dir / "heads" / f"{digest.hexdigest()[:32]}.npz"
    try:
        with np.load(path) as stored:
            return stored["weights"], stored["bias"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        log.warning("biorouter: cached model %s unreadable (%s); training again", path, e)
    weights, bias = fit()
    try:
        with replaced_atomically(path) as partial, partial.open("wb") as handle:
            np.savez(handle, weights=weights, bias=bias)
    except OSError as e:  # a read-only cache: train at every start, as before
        log.warning("biorouter: cannot cache a trained model in %s (%s)", path.parent, e)
    return weights, bias
