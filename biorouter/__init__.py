"""biorouter: task-aware, governance-first routing of LLM requests on top of LiteLLM.

Importing this package loads no model, reads no file and opens no connection: the heavy parts
(LiteLLM, the encoder, the index) load on first use.

    import biorouter
    response = await biorouter.acompletion(messages=[{"role": "user", "content": "..."}])
    response._hidden_params["biorouter"]   # the Decision: task, group, reasons
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.7.1"

__all__ = [
    "BioRouter",
    "BiorouterError",
    "ClassifierError",
    "ConfigError",
    "Decision",
    "KeptLocalError",
    "RequestError",
    "RoutingError",
    "__version__",
    "acompletion",
    "aembedding",
    "aroute",
    "decide",
]

if TYPE_CHECKING:
    from biorouter.errors import (
        BiorouterError,
        ClassifierError,
        ConfigError,
        KeptLocalError,
        RequestError,
        RoutingError,
    )
    from biorouter.routing.decision import Decision
    from biorouter.routing.policy import decide
    from biorouter.serving.engine import BioRouter

_LAZY = {
    "BioRouter": "biorouter.serving.engine",
    "Decision": "biorouter.routing.decision",
    "decide": "biorouter.routing.policy",
    "BiorouterError": "biorouter.errors",
    "ClassifierError": "biorouter.errors",
    "ConfigError": "biorouter.errors",
    "KeptLocalError": "biorouter.errors",
    "RequestError": "biorouter.errors",
    "RoutingError": "biorouter.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'biorouter' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


async def acompletion(messages: Any, model: str = "auto", **kwargs: Any) -> Any:
    """Route ``messages`` to the right deployment group and call it through LiteLLM.

    Uses the default :class:`BioRouter` (``biorouter.yaml`` in the current folder or a parent, or
    ``BIOROUTER_HOME``); the Decision is in ``response._hidden_params["biorouter"]``.
    """
    from biorouter.serving.engine import default_router

    return await default_router().acompletion(messages, model=model, **kwargs)


async def aembedding(input: str | list[str], model: str = "auto", **kwargs: Any) -> Any:
    """Embed ``input`` with the active profile's ``embedding_route`` (or the embedding group named as ``model``).

    Sensitive text is embedded only by local groups; the Decision is in
    ``response._hidden_params["biorouter"]``.
    """
    from biorouter.serving.engine import default_router

    return await default_router().aembedding(input, model=model, **kwargs)


async def aroute(messages: Any, model: str = "auto", *, task: str | None = None) -> Any:
    """The Decision the default router would take, without calling any upstream."""
    from biorouter.serving.engine import default_router

    return await default_router().aroute(messages, model=model, task=task)
