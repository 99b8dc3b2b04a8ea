"""``BioRouter.acompletion()``: a real ``litellm.Router`` over stand-in upstreams on loopback.

The stand-ins are the same ones the proxy tests use (``dev_stack``); here the router runs in this
process, built from the same generated config, so both entry points are proven on one setup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from biorouter.errors import KeptLocalError, RequestError
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT

CODE = [{"role": "user", "content": "write a python function that reverses the order of words in a sentence"}]
BIO = [{"role": "user", "content": "what is the function of the BRCA2 protein in DNA repair?"}]


@pytest.fixture(scope="module")
def engine(dev_stack, classifier) -> BioRouter:  # type: ignore[no-untyped-def]
    return BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )


def content(response: Any) -> str:
    return str(response.choices[0].message.content)


async def test_request_is_answered_by_the_group_its_task_routes_to(engine, clean_standins) -> None:
    response = await engine.acompletion(CODE)
    decision = response._hidden_params["biorouter"]
    assert decision.task == "code_generation"
    assert decision.group == "t4-coder"
    assert content(response).startswith("[t4-coder]")
    assert clean_standins["t4-coder"].stats()["chat_requests"] == 1


async def test_transient_error_is_retried_on_the_same_group(engine, clean_standins) -> None:
    clean_standins["t4-coder"].set_fault(fail_next=1, status=500)
    response = await engine.acompletion(CODE)
    assert content(response).startswith("[t4-coder]")
    stats = clean_standins["t4-coder"].stats()
    assert stats["errors_injected"] == 1
    assert stats["chat_requests"] == 2
    assert clean_standins["t4-generalist"].stats()["requests"] == 0


async def test_group_that_keeps_failing_falls_back_to_the_profile_chain(engine, clean_standins) -> None:
    clean_standins["t4-coder"].set_fault(error_rate=1.0, status=500)
    response = await engine.acompletion(CODE)
    assert content(response).startswith("[t4-generalist]")  # first fallback of code_generation
    assert clean_standins["t4-coder"].stats()["errors_injected"] >= 1
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0


async def test_local_only_request_never_falls_back_to_a_cloud_group(engine, clean_standins) -> None:
    for group in ("t4-bio", "t4-generalist"):
        clean_standins[group].set_fault(error_rate=1.0, status=503)
    with pytest.raises(KeptLocalError, match=r"request kept local \(route 'biomedical' sets allow_cloud: false\)"):
        await engine.acompletion(BIO)
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0
    assert clean_standins["t4-bio"].stats()["requests"] >= 1


async def test_named_group_passes_through_without_classification(engine, clean_standins) -> None:
    response = await engine.acompletion(BIO, model="t4-coder")
    decision = response._hidden_params["biorouter"]
    assert decision.mode == "passthrough"
    assert decision.task is None
    assert content(response).startswith("[t4-coder]")


async def test_unknown_model_is_refused_before_any_upstream_call(engine, clean_standins) -> None:
    with pytest.raises(RequestError, match="unknown model 'gpt-5-turbo'"):
        await engine.acompletion(CODE, model="gpt-5-turbo")
    assert sum(s.stats()["requests"] for s in clean_standins) == 0


async def test_streaming_answer_comes_from_the_routed_group(engine, clean_standins) -> None:
    stream = await engine.acompletion(CODE, stream=True)
    assert stream._hidden_params["biorouter"].group == "t4-coder"
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text.startswith("[t4-coder]")


async def test_profile_defaults_fill_unset_parameters_only(engine) -> None:
    decision = await engine.aroute(CODE)
    assert decision.defaults == {"temperature": 0.2}


class BrokenEncoder:
    """Fault injection: an encoder whose backend fails (e.g. the embeddings server is down)."""

    fingerprint = "broken"

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise OSError("embedding backend unavailable")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise OSError("embedding backend unavailable")


async def test_broken_encoder_still_routes_by_task_with_the_lexical_fallback(dev_stack, clean_standins) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, encoder=BrokenEncoder()
    )
    response = await engine.acompletion(CODE)
    decision = response._hidden_params["biorouter"]
    assert decision.mode == "routed"
    assert decision.task == "code_generation"
    assert decision.group == "t4-coder"
    assert "classifier:lexical" in decision.degraded
    assert any("embedding backend unavailable" in reason for reason in decision.reasons)
    assert content(response).startswith("[t4-coder]")


async def test_broken_encoder_without_fallback_routes_to_the_default_group_and_says_why(
    dev_stack, clean_standins
) -> None:
    settings = load_settings(ROOT)
    settings = settings.model_copy(update={"classifier": settings.classifier.model_copy(update={"fallback": "none"})})
    engine = BioRouter.from_settings(
        settings, profile="development", litellm_config=dev_stack.config_path, encoder=BrokenEncoder()
    )
    response = await engine.acompletion(CODE)
    decision = response._hidden_params["biorouter"]
    assert decision.mode == "default"
    assert decision.group == "t4-generalist"
    assert any("classifier unavailable" in reason for reason in decision.reasons)
    assert content(response).startswith("[t4-generalist]")


async def test_module_level_acompletion_uses_biorouter_yaml(dev_stack, clean_standins, monkeypatch, classifier) -> None:
    import biorouter
    from biorouter.serving import engine as engine_module

    monkeypatch.setenv("BIOROUTER_LITELLM_CONFIG", str(dev_stack.config_path))
    engine_module.reset_default_router()
    try:
        default = engine_module.default_router()  # reads biorouter.yaml; loads nothing yet
        default.classifier = classifier  # share the session's loaded index instead of embedding again
        response = await biorouter.acompletion(messages=CODE)
        assert response._hidden_params["biorouter"].group == "t4-coder"
        assert content(response).startswith("[t4-coder]")
        assert (await biorouter.aroute(CODE)).task == "code_generation"
    finally:
        engine_module.reset_default_router()
