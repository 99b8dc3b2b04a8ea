"""Fixtures shared by the tests that talk to the session's proxy through the OpenAI client."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from biorouter.testing.redis import RedisServer

from ..conftest import ROOT

# Prices for the cloud stand-in in the budget tests: about $0.00035 a request, a $0.0022 estimate held.
CLOUD_PRICES = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00002}


@pytest.fixture(scope="module")
def client(dev_stack) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=dev_stack.proxy.url + "/v1", api_key=dev_stack.proxy.master_key, max_retries=0)


def ask(client: openai.OpenAI, text: str, model: str = "auto") -> tuple[str, dict[str, str]]:
    """One chat turn through the proxy: the answer's text and the response headers."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], timeout=120
    )
    return str(raw.parse().choices[0].message.content), dict(raw.headers)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server of the test module's own (tests needing it skip when it is not installed)."""
    folder = tmp_path_factory.mktemp("redis")
    server = RedisServer(data_dir=folder / "data", log_path=folder / "redis.log")
    server.start()
    yield server
    server.stop()


def budgeted_home(folder: Path, dev_stack: Any, *, profile: str, daily_budget_usd: float) -> Path:
    """A biorouter home in ``folder``: the stand-in's embeddings as the encoder (proxies start in
    seconds), the shipped profiles, and ``profile``, the development profile with a tiny daily
    cloud budget (``max_per_request_usd`` 0.01, ``warn_at`` 0.3)."""
    settings = yaml.safe_load((ROOT / "biorouter.yaml").read_text())
    settings["classifier"]["encoder"] = {
        "kind": "openai-compatible",
        "model": "standin",
        "api_base": dev_stack.fleet["t4-embeddings"].api_base,
        "locality": "local",
    }
    (folder / "biorouter.yaml").write_text(yaml.safe_dump(settings))
    (folder / "utterances").symlink_to(ROOT / "utterances")
    (folder / "litellm_config").symlink_to(ROOT / "litellm_config")
    profiles = folder / "profiles"
    profiles.mkdir()
    for path in (ROOT / "profiles").glob("*.yaml"):
        (profiles / path.name).write_text(path.read_text())
    budgeted = copy.deepcopy(yaml.safe_load((ROOT / "profiles" / "development.yaml").read_text()))
    budgeted.update(name=profile, description="development with a tiny cloud budget, for tests")
    budgeted["costs"] = {"daily_budget_usd": daily_budget_usd, "max_per_request_usd": 0.01, "warn_at": 0.3}
    (profiles / f"{profile}.yaml").write_text(yaml.safe_dump(budgeted))
    return folder


def priced_stand_in_config(dev_stack: Any, path: Path, cloud_group: str) -> Path:
    """The session's stand-in config with ``cloud_group`` priced at :data:`CLOUD_PRICES`, written to ``path``."""
    config = yaml.safe_load(Path(dev_stack.config_path).read_text())
    for deployment in config["model_list"]:
        if deployment["model_name"] == cloud_group:
            deployment["model_info"].update(CLOUD_PRICES)
    path.write_text(yaml.safe_dump(config))
    return path
