"""Two-stage routing and ``model: "auto"`` embeddings through ``BioRouter`` with a real LiteLLM router.

The development profile sends high-tier code requests to deepseek-v3 (its cloud stand-in) and the
rest to the local coder; ``aembedding()`` takes the profile's embedding_route (t4-embeddings, with
the cloud openai-embeddings as a fallback only for text that may leave).
"""

from __future__ import annotations

from typing import Any

import pytest

from biorouter.errors import KeptLocalError, RequestError
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT

SIMPLE = "write a one-line python function that returns the square of a number"
DEMANDING = (
    "Write the code for an end-to-end variant calling pipeline for 3,000 exomes on our SLURM cluster: "
    "1. align with bwa-mem2, 2. mark duplicates, 3. joint genotyping, 4. annotation; parallelise every "
    "stage, checkpoint it so failed nodes resume, and optimise the whole workflow for cost."
)
SAMPLE_ID = " The input manifest starts with sample SMP-004217."


@pytest.fixture(scope="module")
def engine(dev_stack, classifier) -> BioRouter:  # type: ignore[no-untyped-def]
    return BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# The task is named (metadata.biorouter_task) so these tests pin the tier stage, not the classifier.
CODE = {"metadata": {"biorouter_task": "code_generation"}}


async def test_a_simple_code_request_stays_on_the_local_coder(engine, clean_standins) -> None:
    response = await engine.acompletion(user(SIMPLE), **CODE)
    decision = response._hidden_params["biorouter"]
    assert (decision.task, decision.tier, decision.group) == ("code_generation", "low", "t4-coder")
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0


async def test_a_demanding_code_request_goes_to_the_strong_model(engine, clean_standins) -> None:
    response = await engine.acompletion(user(DEMANDING), **CODE)
    decision = response._hidden_params["biorouter"]
    assert (decision.task, decision.tier, decision.group) == ("code_generation", "high", "deepseek-v3")
    assert any(reason.startswith("complexity ") and "examples" in reason for reason in decision.reasons)
    assert str(response.choices[0].message.content).startswith("[deepseek-v3]")


async def test_a_demanding_request_that_must_stay_local_gets_the_local_coder(engine, clean_standins) -> None:
    response = await engine.acompletion(user(DEMANDING + SAMPLE_ID), **CODE)
    decision = response._hidden_params["biorouter"]
    assert (decision.tier, decision.group, decision.local_only) == ("high", "t4-coder", True)
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0


async def test_auto_embeddings_go_to_the_profiles_embedding_group(engine, clean_standins) -> None:
    response = await engine.aembedding(["BRCA1 DNA repair", "TP53 tumour suppressor"])
    decision = response._hidden_params["biorouter"]
    assert (decision.group, decision.fallbacks, decision.task) == ("t4-embeddings", ("openai-embeddings",), None)
    assert len(response.data) == 2
    assert clean_standins["t4-embeddings"].stats()["embedding_requests"] == 1


async def test_auto_embeddings_fall_back_to_the_cloud_model_only_where_allowed(engine, clean_standins) -> None:
    clean_standins["t4-embeddings"].set_fault(error_rate=1.0, status=503)
    response = await engine.aembedding("a harmless sentence about protein folding")
    assert clean_standins["openai-embeddings"].stats()["embedding_requests"] == 1
    assert response._hidden_params["biorouter"].local_only is False

    clean_standins.reset_all()
    with pytest.raises(KeptLocalError, match="sensitive content"):
        await engine.aembedding("sample SMP-004217 expression profile")
    assert clean_standins["openai-embeddings"].stats()["requests"] == 0
    assert clean_standins["t4-embeddings"].stats()["embedding_requests"] >= 1


async def test_a_malformed_embedding_input_is_a_clear_request_error(engine, clean_standins) -> None:
    with pytest.raises(RequestError, match="input must be a string or a non-empty list of strings"):
        await engine.aembedding([])
    assert all(standin.stats()["requests"] == 0 for standin in clean_standins)
