"""``/v1/embeddings`` with ``"model": "auto"`` through the real proxy: the profile's embedding route, governed."""

from __future__ import annotations

import openai
import pytest


def test_auto_embeddings_reach_the_profiles_embedding_group(client, clean_standins) -> None:  # type: ignore[no-untyped-def]
    raw = client.embeddings.with_raw_response.create(model="auto", input=["BRCA1 DNA repair", "protein folding"])
    body = raw.parse()
    assert len(body.data) == 2
    assert len(body.data[0].embedding) > 0
    assert raw.headers["x-biorouter-group"] == "t4-embeddings"
    assert raw.headers["x-biorouter-fallbacks"] == "openai-embeddings"
    assert clean_standins["t4-embeddings"].stats()["embedding_requests"] == 1
    assert clean_standins["t4-generalist"].stats()["requests"] == 0  # no chat group was asked, nothing classified


def test_sensitive_text_is_never_embedded_by_the_cloud_fallback(client, clean_standins) -> None:  # type: ignore[no-untyped-def]
    clean_standins["t4-embeddings"].set_fault(error_rate=1.0, status=503)
    with pytest.raises(openai.APIStatusError) as excinfo:
        client.embeddings.create(model="auto", input="expression profile of sample SMP-004217")
    assert excinfo.value.status_code == 503
    assert "kept local" in str(excinfo.value)
    assert clean_standins["openai-embeddings"].stats()["requests"] == 0


def test_harmless_text_may_fall_back_to_the_cloud_embedding_model(client, clean_standins) -> None:  # type: ignore[no-untyped-def]
    clean_standins["t4-embeddings"].set_fault(error_rate=1.0, status=503)
    body = client.embeddings.create(model="auto", input="a sentence about the weather")
    assert len(body.data) == 1
    assert clean_standins["openai-embeddings"].stats()["embedding_requests"] == 1
