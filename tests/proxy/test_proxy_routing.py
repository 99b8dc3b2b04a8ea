"""The LiteLLM proxy with the biorouter hook: a real ``litellm`` process on loopback.

One proxy serves the whole session (``dev_stack``); requests go through the ``openai`` SDK as a
client application would send them, and the stand-ins' counters prove which deployment served.
"""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest

from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT
from .conftest import ask

ROUTED = [
    ("write a python function that reverses the order of words in a sentence", "code_generation", "t4-coder"),
    ("What does the TP53 gene do in tumour suppression?", "biomedical", "t4-bio"),
    ("What is the expected value of rolling two fair six-sided dice and adding them?", "math_statistics", "t4-math"),
    ("Hi! Could you recommend a good novel for a long train ride?", "intent_parsing", "t4-generalist"),
]


@pytest.mark.parametrize(("text", "task", "group"), ROUTED, ids=[task for _, task, _ in ROUTED])
def test_auto_request_is_answered_by_the_group_of_its_task(client, clean_standins, text, task, group) -> None:
    answer, headers = ask(client, text)
    assert answer.startswith(f"[{group}]")
    assert headers["x-biorouter-task"] == task
    assert headers["x-biorouter-group"] == group
    assert headers["x-biorouter-profile"] == "development"
    assert 0.0 < float(headers["x-biorouter-confidence"]) <= 1.0
    assert clean_standins[group].stats()["chat_requests"] == 1


def test_streaming_request_is_routed_and_carries_the_headers(client, clean_standins) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "write a python function that parses a VCF header"}],
        stream=True,
        timeout=120,
    ) as response:
        assert response.headers["x-biorouter-group"] == "t4-coder"
        assert response.headers["x-biorouter-task"] == "code_generation"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text.startswith("[t4-coder]")


def test_request_naming_a_group_passes_through_unchanged(client, clean_standins) -> None:
    answer, headers = ask(client, "What does the TP53 gene do?", model="t4-coder")
    assert answer.startswith("[t4-coder]")
    assert headers["x-biorouter-mode"] == "passthrough"
    assert headers["x-biorouter-task"] == ""
    assert clean_standins["t4-bio"].stats()["requests"] == 0


def test_unknown_model_gets_a_clear_400(client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "hello", model="gpt-5-turbo")
    assert "unknown model 'gpt-5-turbo'" in str(caught.value)
    assert "t4-coder" in str(caught.value)  # lists what exists


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}], ids=["no-key", "wrong-key"])
def test_request_without_the_master_key_is_refused_before_any_upstream(dev_stack, clean_standins, headers) -> None:
    # litellm 1.106.2 answers a missing key with a bare 500 and a wrong key with 400 "No connected
    # db." (it has no key database here); what matters is that nothing is served or forwarded.
    response = httpx.post(
        dev_stack.proxy.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
        timeout=30,
    )
    assert response.status_code >= 400
    assert "choices" not in response.text
    assert sum(s.stats()["requests"] for s in clean_standins) == 0


def test_failing_group_falls_back_along_the_profile_chain(client, clean_standins) -> None:
    clean_standins["t4-math"].set_fault(error_rate=1.0, status=500)
    answer, headers = ask(client, "What is the variance of a fair six-sided die roll?")
    assert headers["x-biorouter-group"] == "t4-math"
    assert answer.startswith("[t4-generalist]")  # math_statistics falls back to the generalist
    assert clean_standins["t4-math"].stats()["errors_injected"] >= 1


def test_local_only_request_is_never_sent_to_the_cloud_group(client, clean_standins) -> None:
    for group in ("t4-bio", "t4-generalist"):
        clean_standins[group].set_fault(down=True)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "Interpret the pathogenicity of a BRCA1 frameshift variant for this family")
    assert caught.value.status_code >= 500
    assert clean_standins["deepseek-v3"].stats()["requests"] == 0


async def test_proxy_and_python_api_take_the_same_decision(client, clean_standins, dev_stack, classifier) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )
    for text in ("compare the mean coverage of these samples: A 31x, B 28x, C 45x", "how do I kill a python process"):
        _, headers = ask(client, text)
        decision = await engine.aroute([{"role": "user", "content": text}])
        assert headers["x-biorouter-task"] == decision.task
        assert headers["x-biorouter-group"] == decision.group
        assert headers["x-biorouter-confidence"] == f"{decision.confidence:.4f}"


def test_decision_is_logged_by_the_proxy_without_the_prompt(client, dev_stack) -> None:
    secret = "PATIENT-ZX81 needs a samtools command"
    ask(client, secret)
    log = ""
    for _ in range(20):  # the log is flushed by another process
        log = (dev_stack.run_dir / "proxy.log").read_text(encoding="utf-8", errors="replace")
        if "biorouter decision" in log:
            break
        time.sleep(0.1)
    lines = [line for line in log.splitlines() if "biorouter decision" in line]
    assert lines, "no decision line in the proxy log"
    assert re.search(r'"group": "[\w-]+"', lines[-1])
    assert "PATIENT-ZX81" not in log


def test_a_prompt_no_group_can_hold_is_a_400_naming_the_sizes(client) -> None:  # type: ignore[no-untyped-def]
    text = "The libraries were sequenced on two flow cells and corrected with ComBat-seq. " * 5000 + "Summarise."
    with pytest.raises(openai.BadRequestError, match="no group of profile 'development' holds that many"):
        ask(client, text)
