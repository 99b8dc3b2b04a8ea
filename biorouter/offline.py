"""Keep every library offline: no model hub, no price-map download, no tokenizer fetch.

biorouter runs on clusters without internet access. These defaults must be in the environment
before ``litellm`` or ``transformers`` is first imported (both read them at import time), so the
modules that import them call :func:`apply` first, and the proxy's launcher exports them. Values
already set by the operator win.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["OFFLINE_DEFAULTS", "apply"]

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
}


def _litellm_tokenizers() -> str | None:
    # find_spec locates the package without importing it
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
    return str(folder) if folder.is_dir() else None


def apply() -> dict[str, str]:
    """Set the offline defaults that are not already set; returns the full set in force."""
    defaults = dict(OFFLINE_DEFAULTS)
    tokenizers = _litellm_tokenizers()
    if tokenizers:
        defaults["TIKTOKEN_CACHE_DIR"] = tokenizers
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in defaults}
