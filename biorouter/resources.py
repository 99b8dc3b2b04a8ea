"""Deprecated alias of :mod:`biorouter.hardware.resources` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.hardware import resources as _moved

warnings.warn(
    "biorouter.resources moved to biorouter.hardware.resources; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
