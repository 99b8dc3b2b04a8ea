"""Degraded mode: when the encoder cannot load or fails, requests are still routed by task.

Real components on loopback: an embeddings endpoint on a port where nothing listens, a model
folder that does not exist, and a stand-in ``/v1/embeddings`` server whose faults are switched
on and off. The lexical classifier answers meanwhile; the Decision, its headers and the metrics
say so, and the embeddings come back once the encoder does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from biorouter import metrics
from biorouter.classify.classifier import TaskClassifier
from biorouter.classify.utterances import load_utterances
from biorouter.cli.main import main
from biorouter.errors import ClassifierError
from biorouter.proxy.admin import status_payload
from biorouter.serving.engine import BioRouter
from biorouter.settings import ClassifierSettings, OpenAICompatibleEndpoint, SentenceTransformerModel, load_settings
from biorouter.testing.standin import StandIn, free_port

from ..conftest import ROOT

CODE = "write a python function that merges two sorted lists into one sorted list"
CODE_MESSAGES = [{"role": "user", "content": CODE}]


def endpoint_settings(port: int, **overrides: object) -> ClassifierSettings:
    encoder = OpenAICompatibleEndpoint(
        kind="openai-compatible",
        model="stand-in-embedder",
        api_base=f"http://127.0.0.1:{port}/v1",
        api_key="",
        locality="local",
        timeout_s=5.0,
    )
    return ClassifierSettings.model_validate({"encoder": encoder, **overrides})


def make_classifier(settings: ClassifierSettings, cache: Path) -> TaskClassifier:
    return TaskClassifier(load_utterances(ROOT / "utterances"), settings, cache_dir=cache)


def fallbacks(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("biorouter_classifier_fallbacks_total", {"reason": reason}) or 0.0


@pytest.fixture
def embedder_standin() -> Iterator[StandIn]:
    with StandIn("embedder") as standin:
        yield standin


async def test_endpoint_that_is_down_at_load_routes_by_the_lexical_classifier(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    classifier = make_classifier(endpoint_settings(port), tmp_path)
    before = fallbacks("load")

    result = await classifier.aclassify(CODE)

    assert result.task == "code_generation"
    assert result.source == "lexical"
    assert result.fallback_reason is not None
    assert "encoder unavailable" in result.fallback_reason
    assert f"127.0.0.1:{port}" in result.fallback_reason
    assert not classifier.loaded
    assert fallbacks("load") == before + 1


async def test_missing_model_folder_routes_by_the_lexical_classifier(tmp_path: Path) -> None:
    encoder = SentenceTransformerModel(
        kind="sentence-transformers", model=str(tmp_path / "no-such-model"), runtime="onnx"
    )
    classifier = make_classifier(ClassifierSettings(encoder=encoder), tmp_path)

    result = await classifier.aclassify("what does the TP53 protein do in the cell cycle?")

    assert result.task == "biomedical"
    assert result.source == "lexical"
    assert "no-such-model" in (result.fallback_reason or "")


async def test_without_the_fallback_the_failure_is_raised_as_before(tmp_path: Path) -> None:
    classifier = make_classifier(endpoint_settings(free_port(), fallback="none"), tmp_path)
    with pytest.raises(ClassifierError, match="unreachable"):
        await classifier.aclassify(CODE)


async def test_decision_headers_log_and_metrics_show_the_degraded_mode(tmp_path: Path) -> None:
    settings = load_settings(ROOT)
    settings = settings.model_copy(update={"classifier": endpoint_settings(free_port()), "cache_dir": tmp_path})
    engine = BioRouter.from_settings(settings, profile="development")
    before = fallbacks("load")

    decision = await engine.aroute(CODE_MESSAGES)

    assert decision.mode == "routed"
    assert decision.task == "code_generation"
    assert decision.group == "t4-coder"  # routed by task, not sent to the default route
    assert "classifier:lexical" in decision.degraded
    assert "classifier:lexical" in decision.headers()["x-biorouter-degraded"]
    assert "classifier:lexical" in decision.log_fields()["degraded"]
    assert any("lexical fallback" in reason for reason in decision.reasons)
    assert fallbacks("load") == before + 1
    assert metrics.REGISTRY.get_sample_value("biorouter_degraded", {"component": "classifier"}) == 1.0
    assert "classifier:lexical" in status_payload(engine)["degraded"]  # GET /biorouter/status


async def test_encoder_error_on_a_request_falls_back_and_the_encoder_is_tried_again_later(
    tmp_path: Path, embedder_standin: StandIn
) -> None:
    classifier = make_classifier(endpoint_settings(embedder_standin.port, retry_after_s=2.0), tmp_path)
    healthy = await classifier.aclassify("first request: the encoder is up")
    assert healthy.source == "embedding"

    embedder_standin.set_fault(error_rate=1.0, status=503)
    before = fallbacks("request")
    failed = await classifier.aclassify(CODE)  # not in the query cache: the encoder is asked
    assert failed.source == "lexical"
    assert failed.task == "code_generation"
    assert "encoder failed on the request" in (failed.fallback_reason or "")
    assert "HTTP 503" in (failed.fallback_reason or "")
    assert "injected error" not in (failed.fallback_reason or "")  # the body (it may echo the prompt) is dropped
    assert fallbacks("request") == before + 1

    asked = embedder_standin.stats()["embedding_requests"]
    skipped = await classifier.aclassify("second request, right after the failure")
    assert skipped.source == "lexical"
    assert "recent request" in (skipped.fallback_reason or "")
    assert embedder_standin.stats()["embedding_requests"] == asked  # a failing encoder is not asked again at once

    embedder_standin.clear_fault()
    deadline = time.monotonic() + 30
    result = skipped
    while result.source != "embedding" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        result = await classifier.aclassify("a request once the encoder is back")
    assert result.source == "embedding"
    assert metrics.REGISTRY.get_sample_value("biorouter_degraded", {"component": "classifier"}) == 0.0


async def test_encoder_that_comes_up_later_replaces_the_fallback_after_the_retry(tmp_path: Path) -> None:
    port = free_port()
    classifier = make_classifier(endpoint_settings(port, retry_after_s=0.2), tmp_path)
    first = await classifier.aclassify(CODE)
    assert first.source == "lexical"

    with StandIn("late-embedder", port=port):
        deadline = time.monotonic() + 30
        result = first
        while result.source != "embedding" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the retry runs in the background; requests never wait for it
            result = await classifier.aclassify(CODE)
        assert result.source == "embedding"
        assert classifier.loaded
        assert classifier.load_error is None


EVAL_LINES = [
    {"text": "write a python function that returns the reverse complement of a DNA string", "label": "code_generation"},
    {"text": "what does the CFTR protein do and why does its loss cause cystic fibrosis?", "label": "biomedical"},
    {"text": "hi! how are you doing this morning?", "label": "intent_parsing"},
]


def write_eval(tmp_path: Path) -> Path:
    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in EVAL_LINES) + "\n", encoding="utf-8")
    return data


def test_eval_measures_the_lexical_fallback_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(write_eval(tmp_path)), "--classifier", "lexical", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classifier_sources"] == {"lexical": len(EVAL_LINES)}
    assert report["accuracy"] == 1.0


def test_eval_warns_when_the_fallback_answered_for_a_broken_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    for folder in ("profiles", "utterances", "litellm_config"):
        shutil.copytree(ROOT / folder, home / folder)
    settings = yaml.safe_load((ROOT / "biorouter.yaml").read_text(encoding="utf-8"))
    settings["classifier"]["encoder"] = {
        "kind": "openai-compatible",
        "model": "nowhere",
        "api_base": f"http://127.0.0.1:{free_port()}/v1",
        "locality": "local",
    }
    settings["cache_dir"] = str(tmp_path / "cache")
    (home / "biorouter.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    monkeypatch.setenv("BIOROUTER_HOME", str(home))

    assert main(["eval", "--data", str(write_eval(tmp_path))]) == 0
    captured = capsys.readouterr()
    assert f"classified by: lexical {len(EVAL_LINES)}" in captured.out
    assert "warning: the lexical fallback answered 3 of 3 prompts" in captured.err
    assert "not the embedding classifier's" in captured.err
