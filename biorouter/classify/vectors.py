"""The output contract every text encoder keeps: float32 rows of length 1.

Its own module so that each encoder (torch, ONNX, an HTTP endpoint) can hold to it without importing the
others: :mod:`~biorouter.classify.encoders` builds the ONNX encoder, which must not import it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from biorouter.errors import ClassifierError

__all__ = ["unit_rows"]


def unit_rows(rows: Any) -> np.ndarray:
    """``rows`` as float32 with each row scaled to length 1 (every encoder's output contract)."""
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2:
        raise ClassifierError(f"the encoder returned an array of shape {matrix.shape}, expected (texts, dimensions)")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: np.ndarray = matrix / np.clip(norms, 1e-12, None)
    return result
