"""Deprecated alias of :mod:`biorouter.routing.policy` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.routing import policy as _moved

warnings.warn(
    "biorouter.policy moved to biorouter.routing.policy; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
