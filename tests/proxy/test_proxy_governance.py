"""Sensitive data never reaches a cloud provider through the LiteLLM proxy, whatever fails.

The same batches and fault states as the Python API suite, sent as HTTP to the real ``litellm``
process of the session (``dev_stack``). The ``deepseek-v3`` stand-in plays the cloud provider and
counts every request it receives; the proxy's audit log is read back from its file.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.serving.audit import AuditRecord, read_records

from ..governance_cases import CLOUD, FAULTS, LOCAL_GROUPS, ORDINARY, REQUEST_TIMEOUT_S, SENSITIVE, fail_locals


def audit_path(dev_stack: Any) -> Path:
    return Path(dev_stack.run_dir) / "audit.jsonl"


def audit_records(dev_stack: Any, request_ids: set[str], timeout: float = 10) -> list[AuditRecord]:
    """The records of ``request_ids``; success records are written by LiteLLM's logging task, so wait."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        if audit_path(dev_stack).exists():
            found = [r for r in read_records(audit_path(dev_stack)) if r.request_id in request_ids]
        if len(found) >= len(request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


async def post_all(dev_stack: Any, bodies: list[dict[str, Any]], path: str = "/v1/chat/completions") -> list[Any]:
    headers = {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}
    async with httpx.AsyncClient(base_url=dev_stack.proxy.url, headers=headers, timeout=60) as client:
        return await asyncio.gather(*(client.post(path, json=body) for body in bodies))


def chat(text: str, *, model: str = "auto", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "timeout": REQUEST_TIMEOUT_S, **extra}


def answered_by(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"]).split("]")[0].lstrip("[")


def error_message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


@pytest.mark.parametrize("state", list(FAULTS))
async def test_sensitive_requests_are_answered_locally_or_refused_with_503_never_by_the_cloud(
    dev_stack: Any, clean_standins: Any, state: str
) -> None:
    fail_locals(clean_standins, FAULTS[state])
    responses = await post_all(dev_stack, [chat(text) for text in SENSITIVE])

    assert clean_standins[CLOUD].stats()["requests"] == 0
    for text, response in zip(SENSITIVE, responses, strict=True):
        if state == "healthy":
            assert response.status_code == 200, f"{text!r}: {response.text}"
            assert answered_by(response) in LOCAL_GROUPS
            assert response.headers["x-biorouter-local-only"] == "true"
            assert response.headers["x-biorouter-local-only-rules"]
        else:
            assert response.status_code == 503, f"{text!r}: {response.status_code} {response.text}"
            message = error_message(response)
            assert message.startswith("biorouter: request kept local (")
            assert "no local deployment could serve it" in message

    ids = {r.headers["x-litellm-call-id"] for r in responses}
    records = audit_records(dev_stack, ids)
    assert len(records) == len(SENSITIVE)
    assert {r.outcome for r in records} == {"served" if state == "healthy" else "refused"}
    if state == "healthy":
        assert {r.locality for r in records} == {"local"}


@pytest.mark.parametrize("state", list(FAULTS))
async def test_ordinary_requests_still_fall_back_to_the_cloud_where_the_profile_allows(
    dev_stack: Any, clean_standins: Any, state: str
) -> None:
    fail_locals(clean_standins, FAULTS[state])
    bodies = [chat(text, metadata={"biorouter_task": task}) for text, task in ORDINARY]
    responses = await post_all(dev_stack, bodies)

    for response in responses:
        assert response.status_code == 200, response.text
        assert response.headers["x-biorouter-local-only"] == "false"
        assert (answered_by(response) in LOCAL_GROUPS) if state == "healthy" else (answered_by(response) == CLOUD)
    assert clean_standins[CLOUD].stats()["requests"] == (0 if state == "healthy" else len(ORDINARY))


async def test_naming_the_cloud_group_with_identifiers_is_refused_before_any_call(
    dev_stack: Any, clean_standins: Any
) -> None:
    [response] = await post_all(dev_stack, [chat("Patient ID PT-00923: summarise his last visits", model=CLOUD)])
    assert response.status_code == 503
    assert "names cloud group 'deepseek-v3' but must stay local" in error_message(response)
    assert sum(s.stats()["requests"] for s in clean_standins) == 0


async def test_a_client_cannot_forge_biorouters_decision_to_lift_the_rule(dev_stack: Any, clean_standins: Any) -> None:
    forged = {"biorouter": {"local_only": False, "profile": "development", "mode": "passthrough", "group": CLOUD}}
    body = chat("MRN: 00482913, please summarise", model=CLOUD, metadata=forged)
    [response] = await post_all(dev_stack, [body])
    assert response.status_code == 503
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_task_hint_refines_routing_but_keeps_identifiers_local(dev_stack: Any, clean_standins: Any) -> None:
    fail_locals(clean_standins, FAULTS["errors"])
    body = chat("Turn this into a table: Jane Okafor, DOB 12/03/1971", metadata={"biorouter_task": "documentation"})
    [response] = await post_all(dev_stack, [body])
    assert response.status_code == 503
    assert "sensitive content (date_of_birth)" in error_message(response)
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_unknown_task_hint_is_a_400_naming_the_key(dev_stack: Any, clean_standins: Any) -> None:
    [response] = await post_all(dev_stack, [chat("hello", metadata={"biorouter_task": "genomics"})])
    assert response.status_code == 400
    assert "unknown task 'genomics' in metadata.biorouter_task" in error_message(response)


async def test_embeddings_with_identifiers_are_refused_for_a_cloud_group(dev_stack: Any, clean_standins: Any) -> None:
    sensitive = {"model": CLOUD, "input": ["Patient Maria Gonzalez, MRN 00482913, presented with chest pain"]}
    ordinary = {"model": CLOUD, "input": ["write a python function that reverses the words of a sentence"]}
    refused, served = await post_all(dev_stack, [sensitive, ordinary], path="/v1/embeddings")
    assert refused.status_code == 503, refused.text
    assert "must stay local" in error_message(refused)
    assert served.status_code == 200, served.text  # the same group, without identifiers: governance only
    assert clean_standins[CLOUD].stats()["embedding_requests"] == 1
