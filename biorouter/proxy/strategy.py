"""Race, ensemble and cascade inside the LiteLLM proxy: a custom provider that runs the plan.

The proxy hook only rewrites a request before LiteLLM routes it; it cannot answer it. Three ways
to fan a request out inside the proxy were weighed:

- LiteLLM's comma-separated ``model`` fan-out (``route_llm_request``): ``fastest_response`` maps to
  ``abatch_completion_fastest_response`` (the first response wins even when it is empty or a
  refusal), and the batch form returns a *list*, not a chat completion. It fits no strategy fully.
- The hook running the plan itself: a pre-call hook can change or reject a request but not
  return an answer, so the proxy would still make its own call afterwards.
- **A custom provider** (chosen): ``litellm_config/config.yaml`` declares a pseudo deployment
  group ``biorouter-strategy`` (``model: biorouter/strategy``) served by :data:`strategy_handler`
  through ``litellm_settings.custom_provider_map``. When the Decision's plan fans out, the hook
  sends the request to that group (no retries, no fallbacks: the plan has its own); the handler
  runs the plan (:func:`biorouter.serving.orchestrate.serve_plan`) against the proxy's own ``llm_router``
  and returns the winning chat completion. So the client gets one normal response; every inner
  call is an ordinary routed call whose metadata carries the Decision, so the guard checks every
  hop; the strategy counts each inner call once (the hook's success callback skips both the inner
  calls and the outer one); a failed fan-out is one clear error (a 503 naming the rule for a
  local-only request); and a local-only plan only names local groups.

The pseudo group declares ``locality: local`` (it runs in the proxy process and only forwards to
groups the plan allows), and biorouter's catalogue leaves ``biorouter/`` models out, so profiles
cannot route to it and ``biorouter validate`` does not count it as a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from litellm.llms.custom_llm import CustomLLM, CustomLLMError

from biorouter.errors import BiorouterError
from biorouter.proxy.fan_out import STRATEGY_GROUP, is_inner_call, strategy_arguments
from biorouter.routing.decision import Decision
from biorouter.serving.adapter import litellm_arguments
from biorouter.serving.orchestrate import StrategyFailed, serve_plan

__all__ = ["STRATEGY_GROUP", "StrategyProvider", "is_inner_call", "strategy_arguments", "strategy_handler"]

logger = logging.getLogger("biorouter.proxy")

# OpenAI request fields the inner calls take over from the client's request, as LiteLLM hands them on.
_PASSED_ON = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "logit_bias",
    "user",
)


def _error(status: int, message: str) -> Exception:
    """LiteLLM maps a custom provider's ``CustomLLMError`` to an HTTP error with this status."""
    error: Exception = CustomLLMError(status_code=status, message=message)  # type: ignore[no-untyped-call]
    return error


class StrategyProvider(CustomLLM):
    """LiteLLM custom provider ``biorouter``: runs the Decision's strategy plan inside the proxy."""

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:  # LiteLLM passes every argument by name
        from litellm.proxy import proxy_server

        from biorouter.proxy.hook import _budget_state, proxy_handler_instance  # the provider runs in the hook's proxy

        params: Mapping[str, Any] = kwargs.get("litellm_params") or {}
        metadata = dict(params.get("metadata") or {})
        summary = metadata.get("biorouter")
        router = getattr(proxy_server, "llm_router", None)
        if not isinstance(summary, Mapping) or router is None:
            raise _error(400, "biorouter-strategy serves only requests biorouter routed")
        decision = Decision.model_validate(summary)
        engine = await proxy_handler_instance.engine()
        held, scopes = _budget_state({"metadata": metadata})
        optional: Mapping[str, Any] = kwargs.get("optional_params") or {}
        request: dict[str, Any] = {k: optional[k] for k in _PASSED_ON if optional.get(k) is not None}
        timeout = kwargs.get("timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            request["timeout"] = timeout
        request.update(messages=kwargs.get("messages"), metadata=metadata)
        # The same governance arguments as the in-process path (timeouts, retries, cache, no widening).
        arguments = {**request, **litellm_arguments(decision, request, engine.profile)}
        arguments["metadata"] = {**metadata, **arguments["metadata"]}
        request_id = str(params.get("litellm_call_id") or metadata.get("litellm_call_id") or "-")
        try:
            response, _ = await serve_plan(
                engine, decision, held, scopes, router=router, arguments=arguments, request_id=request_id
            )
        except StrategyFailed as e:
            raise _error(503 if decision.local_only else 502, f"biorouter: {e}") from e
        except BiorouterError as e:
            raise _error(500, f"biorouter strategy: {e}") from e
        return response


strategy_handler = StrategyProvider()
"""Named in ``litellm_settings.custom_provider_map`` as ``biorouter.proxy.strategy.strategy_handler``."""
