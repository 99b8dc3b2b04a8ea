"""What a request will cost before it is sent: prices per group, and the estimate for one request.

Prices come from each deployment's ``model_info`` (``input_cost_per_token``,
``output_cost_per_token``) when the config sets them — local vLLM groups set 0 — and otherwise from
LiteLLM's bundled price map for the deployment's model. A group's price is its most expensive
deployment's, so an estimate never undershoots whichever deployment LiteLLM picks. A cloud group
whose price is unknown gets ``None``: budgets cannot limit what they cannot price, and
``biorouter validate`` says so.

The estimate is prompt tokens (LiteLLM's token counter) times the input price, plus the answer
length (the request's ``max_tokens``, else the route's, else the profile's ``default_max_tokens``)
times the output price: an upper bound for the answer, a fair guess for the prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from biorouter import offline
from biorouter.routing.catalogue import Deployment

__all__ = ["Prices", "count_prompt_tokens", "estimate_usd", "group_prices"]

logger = logging.getLogger("biorouter.costs")


class Prices(BaseModel):
    """US dollars per token for one group."""

    model_config = ConfigDict(frozen=True)

    input_per_token: float
    output_per_token: float

    @property
    def free(self) -> bool:
        return self.input_per_token == 0 and self.output_per_token == 0


def _deployment_prices(deployment: Deployment) -> Prices | None:
    info = deployment.model_info.model_extra or {}
    given_in, given_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if isinstance(given_in, (int, float)) and isinstance(given_out, (int, float)):
        return Prices(input_per_token=float(given_in), output_per_token=float(given_out))
    if deployment.locality == "local":
        return Prices(input_per_token=0.0, output_per_token=0.0)  # our GPUs: no per-token price
    try:
        offline.apply()  # the bundled price map, never a download
        import litellm

        found: Mapping[str, Any] = litellm.get_model_info(deployment.litellm_params.model)
    except Exception:
        return None
    cost_in, cost_out = found.get("input_cost_per_token"), found.get("output_cost_per_token")
    if not isinstance(cost_in, (int, float)) or not isinstance(cost_out, (int, float)) or cost_in + cost_out == 0:
        return None
    return Prices(input_per_token=float(cost_in), output_per_token=float(cost_out))


def group_prices(deployments: Iterable[Deployment]) -> dict[str, Prices | None]:
    """Group -> the price of its most expensive deployment (None if any deployment has no known price)."""
    prices: dict[str, Prices | None] = {}
    for deployment in deployments:
        price = _deployment_prices(deployment)
        group = deployment.model_name
        if group not in prices:
            prices[group] = price
            continue
        current = prices[group]
        if current is None or price is None:
            prices[group] = None
            continue
        prices[group] = Prices(
            input_per_token=max(current.input_per_token, price.input_per_token),
            output_per_token=max(current.output_per_token, price.output_per_token),
        )
    return prices


def count_prompt_tokens(messages: Any) -> int:
    """Prompt tokens as LiteLLM counts them (its bundled tokenizer, offline)."""
    import litellm

    try:
        return int(litellm.token_counter(messages=messages))
    except Exception:
        text = str(messages)
        return max(1, len(text) // 4)


def estimate_usd(prices: Prices, prompt_tokens: int, max_tokens: int) -> float:
    return prompt_tokens * prices.input_per_token + max_tokens * prices.output_per_token
