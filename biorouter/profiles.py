"""Deprecated alias of :mod:`biorouter.routing.profiles` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.routing import profiles as _moved

warnings.warn(
    "biorouter.profiles moved to biorouter.routing.profiles; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
