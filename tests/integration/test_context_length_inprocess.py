"""Context-length routing end to end in-process: real token counts (LiteLLM's tokenizer), shipped profile.

The development profile's windows (``litellm_config/config.yaml``): t4-bio 2,048 tokens, t4-math
4,096, t4-generalist 32,768, deepseek-v3 65,536.
"""

from __future__ import annotations

import pytest

from biorouter.errors import RequestError
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT

PARAGRAPH = (
    "The cohort's RNA-seq libraries were sequenced on two flow cells; we saw a batch effect between "
    "them in the PCA and corrected it with ComBat-seq before the differential expression analysis. "
)


def long_question(tokens: int, ask: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": PARAGRAPH * (tokens // 35) + ask}]


@pytest.fixture(scope="module")
def engine(dev_stack, classifier) -> BioRouter:  # type: ignore[no-untyped-def]
    return BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )


async def test_a_short_request_keeps_the_small_window_group(engine: BioRouter) -> None:
    decision = await engine.aroute([{"role": "user", "content": "what is a p-value?"}], task="math_statistics")
    assert decision.group == "t4-math"


async def test_a_biomedical_request_longer_than_the_bio_models_window_stays_local(engine: BioRouter) -> None:
    decision = await engine.aroute(long_question(3000, "Which genes drive this phenotype?"), task="biomedical")
    assert decision.local_only
    assert decision.group == "t4-generalist"
    assert any("'t4-bio' holds 2048 tokens" in reason for reason in decision.reasons)


async def test_max_tokens_from_the_request_counts(engine: BioRouter) -> None:
    messages = long_question(3000, "What is the variance here?")
    assert (await engine.aroute(messages, task="math_statistics")).group == "t4-math"
    roomy = await engine.aroute(messages, task="math_statistics", request={"max_tokens": 2000})
    assert roomy.group == "t4-generalist"


async def test_a_prompt_no_group_holds_is_refused_before_any_upstream_call(engine: BioRouter, clean_standins) -> None:  # type: ignore[no-untyped-def]
    too_long = long_question(70_000, "Summarise all of this.")
    with pytest.raises(RequestError, match=r"no group of profile 'development' holds that many"):
        await engine.acompletion(too_long, metadata={"biorouter_task": "documentation"})
    assert sum(standin.stats()["requests"] for standin in clean_standins) == 0


async def test_a_malformed_max_tokens_is_a_request_error(engine: BioRouter) -> None:
    with pytest.raises(RequestError, match="max_tokens must be a non-negative integer"):
        await engine.aroute([{"role": "user", "content": "hi"}], request={"max_tokens": "lots"})
