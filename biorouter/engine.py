"""Deprecated alias of :mod:`biorouter.serving.engine` (moved there in 0.5; this alias goes in a later release)."""

import sys
import warnings

from biorouter.serving import engine as _moved

warnings.warn(
    "biorouter.engine moved to biorouter.serving.engine; import it from there", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
