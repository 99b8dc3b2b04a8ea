"""Deprecated alias of :mod:`biorouter.routing.decision` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.routing import decision as _moved

warnings.warn(
    "biorouter.decision moved to biorouter.routing.decision; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
