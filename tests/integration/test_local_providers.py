"""Local servers other than vLLM: an LM Studio deployment (LiteLLM's ``lm_studio/`` provider) as a local group.

LM Studio serves the OpenAI API (``/v1/chat/completions``), so a stand-in plays it; the deployment
goes through LiteLLM's real ``lm_studio`` provider, not the ``openai/`` one. ``locality: local`` in
``model_info`` is all governance needs: a biomedical request (local-only) is served by it, and the
cloud group receives nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from biorouter.serving.engine import BioRouter
from biorouter.serving.validate import validate_all
from biorouter.settings import load_settings
from biorouter.testing import StandInFleet

from ..conftest import ROOT

BIO = [{"role": "user", "content": "what is the function of the BRCA2 protein in DNA repair?"}]


@pytest.fixture(scope="module")
def fleet() -> Iterator[StandInFleet]:
    with StandInFleet(["lmstudio-laptop", "deepseek-v3"]) as running:
        yield running


def lm_studio_config(folder: Path, fleet: StandInFleet) -> Path:
    """t4-bio and t4-generalist served by one LM Studio on this machine; the cloud group by a stand-in."""
    lm_studio = {"model": "lm_studio/qwen2.5-7b-instruct", "api_base": fleet["lmstudio-laptop"].api_base}
    config = {
        "model_list": [
            {
                "model_name": group,
                "litellm_params": dict(lm_studio),
                "model_info": {"locality": "local", "mode": "chat", "max_input_tokens": 32768},
            }
            for group in ("t4-bio", "t4-generalist")
        ]
        + [
            {
                "model_name": "deepseek-v3",
                "litellm_params": {"model": "openai/deepseek-v3", "api_base": fleet["deepseek-v3"].api_base},
                "model_info": {"locality": "cloud", "input_cost_per_token": 2.8e-7, "output_cost_per_token": 4.2e-7},
            }
        ]
    }
    path = folder / "lm_studio.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_a_local_only_request_is_served_by_an_lm_studio_deployment(
    fleet: StandInFleet, classifier: Any, tmp_path: Path
) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT),
        profile="development",
        litellm_config=lm_studio_config(tmp_path, fleet),
        classifier=classifier,
    )
    response = await engine.acompletion(BIO)
    decision = response._hidden_params["biorouter"]
    assert decision.local_only
    assert decision.group == "t4-bio"
    assert engine.catalogue.is_local("t4-bio")
    assert str(response.choices[0].message.content).startswith("[lmstudio-laptop] ")
    assert response._hidden_params["custom_llm_provider"] == "lm_studio"  # LiteLLM's provider, not openai/
    assert fleet["lmstudio-laptop"].stats()["chat_requests"] >= 1
    assert fleet["deepseek-v3"].stats()["requests"] == 0


def test_the_shipped_commented_examples_validate_as_local_groups(tmp_path: Path) -> None:
    """The Ollama and LM Studio entries commented in litellm_config/config.yaml, uncommented, are valid local groups."""
    text = (ROOT / "litellm_config" / "config.yaml").read_text(encoding="utf-8")
    start, end = text.index("# >>> other local servers"), text.index("# <<< other local servers")
    block = [line for line in text[start:end].splitlines()[1:] if line.strip()]
    uncommented = "\n".join(line.replace("# ", "", 1) for line in block)
    entries = yaml.safe_load(uncommented)
    assert {e["litellm_params"]["model"].split("/")[0] for e in entries} == {"ollama_chat", "lm_studio"}
    assert all(e["model_info"]["locality"] == "local" for e in entries)
    config = yaml.safe_load(text)
    config["model_list"].extend(entries)
    home = tmp_path / "home"
    home.mkdir()
    for name in ("profiles", "utterances"):
        (home / name).symlink_to(ROOT / name)
    (home / "litellm_config").mkdir()
    (home / "litellm_config" / "config.yaml").write_text(yaml.safe_dump(config))
    (home / "biorouter.yaml").write_text((ROOT / "biorouter.yaml").read_text())
    report = validate_all(load_settings(home))
    assert report.ok, [str(p) for p in report.errors]
    for entry in entries:
        assert report.groups[entry["model_name"]] == "local"
