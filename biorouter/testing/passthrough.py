"""A LiteLLM proxy hook that routes nothing: the baseline biorouter's own hook is measured against.

``bench/proxy_overhead.py`` runs the same ``litellm`` proxy twice, once with biorouter's hook
and once with this one, so the difference is what biorouter costs and nothing else: the same
process, config, auth, router and upstream. A proxy *without* a callback would not do: it would
answer the client's ``"model": "auto"`` with HTTP 400 (no such group), and it would skip
LiteLLM's own cost of calling a hook. This hook does the least a router must do: it sets
``model`` to one fixed group.

Use it from a proxy config (``litellm_settings: callbacks:
biorouter.testing.passthrough.passthrough_handler_instance``); ``BIOROUTER_PASSTHROUGH_GROUP``
names the group (default ``t4-generalist``). Importing this module loads no model and reads no file.

Like biorouter's hook, it freezes the proxy's start-up heap out of garbage collection
(:mod:`biorouter.serving.heap`; ``BIOROUTER_GC_FREEZE=0`` turns both off), on its first request:
the freeze makes LiteLLM's own handling cheaper, and the baseline must have that too, or the
comparison would credit biorouter's hook with a saving that is LiteLLM's.
"""

from __future__ import annotations

import os
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from biorouter.serving.heap import freeze_startup_heap

__all__ = ["DEFAULT_GROUP", "GROUP_ENV", "PassThroughHook", "passthrough_handler_instance"]

GROUP_ENV = "BIOROUTER_PASSTHROUGH_GROUP"
DEFAULT_GROUP = "t4-generalist"


class PassThroughHook(CustomLogger):
    """Sends every request to one deployment group, unchanged otherwise."""

    def __init__(self, group: str | None = None) -> None:
        super().__init__()
        self.group = group or os.environ.get(GROUP_ENV) or DEFAULT_GROUP
        self._frozen = False

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        if not self._frozen:  # the proxy has started and loaded its router by now (a bench's warm-up pays it)
            self._frozen = True
            freeze_startup_heap()
        data["model"] = self.group
        return data


passthrough_handler_instance = PassThroughHook()
