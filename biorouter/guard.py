"""Deprecated alias of :mod:`biorouter.governance.guard` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.governance import guard as _moved

warnings.warn(
    "biorouter.guard moved to biorouter.governance.guard; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
