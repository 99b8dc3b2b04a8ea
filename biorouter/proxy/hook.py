"""The LiteLLM proxy hook: classify, decide, and rewrite the request before LiteLLM routes it.

For every chat request the proxy calls :meth:`BiorouterProxyHook.async_pre_call_hook`, which
reads the messages, lets the same ``BioRouter.aroute()`` the Python API uses take the decision,
and sets ``model``, ``fallbacks`` and ``metadata["biorouter"]`` on the request; LiteLLM then does
the transport (retries, cooldowns, fallbacks). After the call, the decision becomes
``x-biorouter-*`` response headers (streaming included).

The hook is built when the proxy imports this module, but it loads nothing then: the profile,
utterances and deployment list are read on the first request, from the proxy's own router.
``BIOROUTER_WARMUP=1`` starts loading the classifier in a background thread at start-up instead,
so the first request does not wait for the encoder (``biorouter serve`` sets it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger

from biorouter.adapter import METADATA_KEY, litellm_arguments
from biorouter.classifier import TaskClassifier
from biorouter.decision import Decision
from biorouter.engine import BioRouter
from biorouter.errors import BiorouterError, ConfigError, Problem, RequestError, RoutingError
from biorouter.settings import load_settings

__all__ = ["BiorouterProxyHook", "proxy_handler_instance"]

logger = logging.getLogger("biorouter.proxy")

_CHAT_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})


def _configure_logging() -> None:
    """Decision lines go to the proxy's stderr unless the operator configured logging already."""
    root = logging.getLogger("biorouter")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s - biorouter:%(levelname)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("BIOROUTER_LOG_LEVEL", "INFO").upper())
        root.propagate = False


def _proxy_model_list() -> list[Mapping[str, Any]]:
    """The deployments the running proxy serves (resolved from its config)."""
    from litellm.proxy import proxy_server

    router = getattr(proxy_server, "llm_router", None)
    if router is None:
        raise ConfigError([Problem("litellm proxy", (), "no model_list loaded: start the proxy with --config")])
    return list(router.model_list)


class BiorouterProxyHook(CustomLogger):
    """Routes ``"model": "auto"`` requests inside the LiteLLM proxy."""

    def __init__(self, *, warmup: bool | None = None) -> None:
        super().__init__()
        self._engine: BioRouter | None = None
        self._classifier: TaskClassifier | None = None
        self._lock = threading.Lock()
        _configure_logging()
        if warmup if warmup is not None else os.environ.get("BIOROUTER_WARMUP") == "1":
            threading.Thread(target=self._warm, name="biorouter-warmup", daemon=True).start()

    def _shared_classifier(self) -> TaskClassifier:
        with self._lock:
            if self._classifier is None:
                self._classifier = TaskClassifier.from_settings(load_settings())
            return self._classifier

    def _warm(self) -> None:
        try:
            self._shared_classifier().load()
            logger.info("biorouter classifier loaded")
        except BiorouterError as e:
            logger.error("biorouter warm-up failed (requests will report it): %s", e)

    def _build_engine(self) -> BioRouter:
        classifier = self._shared_classifier()
        engine = BioRouter.from_settings(model_list=_proxy_model_list(), classifier=classifier)
        logger.info(
            "biorouter active profile '%s' over groups: %s", engine.profile.name, ", ".join(engine.catalogue.names())
        )
        return engine

    async def engine(self) -> BioRouter:
        if self._engine is None:
            engine = await asyncio.to_thread(self._build_engine)
            with self._lock:
                if self._engine is None:
                    self._engine = engine
        assert self._engine is not None
        return self._engine

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: str
    ) -> dict[str, Any]:
        if call_type not in _CHAT_CALLS:
            return data
        messages = data.get("messages")
        if messages is None and "prompt" in data:  # /v1/completions carries a prompt, not messages
            prompt = data["prompt"]
            text = prompt if isinstance(prompt, str) else "\n".join(p for p in prompt or [] if isinstance(p, str))
            messages = [{"role": "user", "content": text}]
        try:
            engine = await self.engine()
            decision = await engine.aroute(messages, str(data.get("model") or "auto"))
        except RequestError as e:
            raise HTTPException(status_code=400, detail=f"biorouter: {e}") from e
        except RoutingError as e:
            logger.warning("biorouter refused a request: %s", e)
            raise HTTPException(status_code=503, detail=f"biorouter: {e}") from e
        except ConfigError as e:
            logger.error("biorouter configuration error: %s", e)
            raise HTTPException(status_code=500, detail=f"biorouter configuration error: {e}") from e
        logger.info(decision.log_line())
        data.update(litellm_arguments(decision, data, engine.profile))
        return data

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        metadata = data.get("metadata")
        summary = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
        if not isinstance(summary, Mapping):
            return None
        return Decision.model_validate(summary).headers()


proxy_handler_instance = BiorouterProxyHook()
