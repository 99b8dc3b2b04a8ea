"""The guard alone in a real ``litellm`` proxy: the second wall, with no biorouter routing in front.

In the main proxy ``decide()`` never offers a cloud group to a local-only request, so the guard
has nothing to drop there. This proxy runs only ``biorouter.governance.guard.proxy_guard`` over a group that
mixes a local deployment with a cloud one (the ``deepseek-v3`` stand-in): LiteLLM load-balances
between them, and only the guard stands between identifiers and the cloud.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from biorouter.testing.devstack import ProxyProcess

from ..conftest import ROOT
from ..governance_cases import CLOUD

MIXED = "t4-generalist"


@pytest.fixture(scope="module")
def guard_proxy(dev_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    config = yaml.safe_load(Path(dev_stack.config_path).read_text())
    [local] = [d for d in config["model_list"] if d["model_name"] == MIXED]
    cloud_twin = copy.deepcopy(local)
    cloud_twin["litellm_params"]["api_base"] = dev_stack.fleet[CLOUD].api_base
    cloud_twin["model_info"]["locality"] = "cloud"
    [cloud] = [d for d in config["model_list"] if d["model_name"] == CLOUD]
    config["model_list"] = [local, cloud_twin, cloud]
    config["router_settings"] = {"routing_strategy": "simple-shuffle", "num_retries": 0}
    config["litellm_settings"] = {"callbacks": "biorouter.governance.guard.proxy_guard"}
    run_dir = tmp_path_factory.mktemp("guard-proxy")
    path = run_dir / "guard-only.yaml"
    path.write_text(yaml.safe_dump(config))
    proxy = ProxyProcess(path, env={"BIOROUTER_HOME": str(ROOT), "BIOROUTER_WARMUP": "0"}, log_path=run_dir / "log")
    proxy.start()
    yield proxy
    proxy.stop()


def send(proxy: ProxyProcess, text: str, model: str = MIXED) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    return httpx.post(proxy.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_guard_keeps_requests_with_identifiers_on_the_local_deployment(
    guard_proxy: ProxyProcess, clean_standins: Any
) -> None:
    for number in range(20):
        response = send(guard_proxy, f"Patient MRN: 0048{number:04d} - summarise the attached labs")
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"].startswith(f"[{MIXED}]")
    assert clean_standins[CLOUD].stats()["requests"] == 0
    assert clean_standins[MIXED].stats()["requests"] == 20
    assert "biorouter guard: dropped 1 cloud deployment(s) of 't4-generalist'" in guard_proxy.log_tail(20_000)


def test_without_identifiers_both_deployments_serve_so_the_guard_is_what_held(
    guard_proxy: ProxyProcess, clean_standins: Any
) -> None:
    for _ in range(20):
        assert send(guard_proxy, "summarise the attached table of read counts").status_code == 200
    assert clean_standins[CLOUD].stats()["requests"] > 0


def test_identifiers_sent_to_a_cloud_only_group_get_a_503_that_says_why(
    guard_proxy: ProxyProcess, clean_standins: Any
) -> None:
    response = send(guard_proxy, "Jane Okafor, DOB 12/03/1971: draft the referral letter", model=CLOUD)
    assert response.status_code == 503, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("biorouter guard: request kept local (content:date_of_birth")
    assert "group 'deepseek-v3' has only cloud deployments" in message
    assert clean_standins[CLOUD].stats()["requests"] == 0


def test_identifiers_with_the_local_deployment_failing_get_its_error_not_a_cloud_answer(
    guard_proxy: ProxyProcess, clean_standins: Any
) -> None:
    clean_standins[MIXED].set_fault(error_rate=1.0, status=500)
    response = send(guard_proxy, "Jane Okafor, DOB 12/03/1971: draft the referral letter")
    assert response.status_code == 500
    assert "standin t4-generalist injected error" in response.text
    assert clean_standins[CLOUD].stats()["requests"] == 0
