"""Who may use the proxy and change it, and what a client cannot do with request fields.

* Every endpoint, biorouter's included, needs a valid key (401 without one or with a wrong one).
* Admin actions (profile switch, reload) need the proxy admin role: a LiteLLM virtual key of an
  ordinary user gets 403. Virtual keys live in LiteLLM's database (Postgres), which this suite
  does not run, so the role check is exercised in-process with LiteLLM's auth dependency answering
  for such a key; the 401s are checked against the real proxy.
* ``make run`` generates its master key and binds 127.0.0.1.
* No request field chooses the profile or lifts a local-only rule: forged decisions and budget
  state, profile names in the body, metadata or headers, ``allow_cloud``, a cloud task hint and
  the client's own ``fallbacks`` are all ignored, shown with every local group failing so that
  any lifted rule would reach the cloud stand-in.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from biorouter.testing.devstack import ProxyProcess

from ..governance_cases import CLOUD, FAULTS, fail_locals

ENDPOINTS = [
    ("POST", "/v1/chat/completions", {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}),
    ("GET", "/biorouter/status", None),
    ("GET", "/biorouter/metrics", None),
    ("POST", "/biorouter/profile", {"profile": "cloud_only", "reason": "attack"}),
    ("POST", "/biorouter/reload", {"reason": "attack"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[p for _, p, _ in ENDPOINTS])
def test_every_endpoint_refuses_a_missing_or_wrong_key(dev_stack: Any, method: str, path: str, body: Any) -> None:
    url = dev_stack.proxy.url + path
    missing = httpx.request(method, url, json=body, timeout=30)
    assert missing.status_code == 401, missing.text[:300]
    wrong = httpx.request(method, url, json=body, headers={"Authorization": "Bearer sk-wrong"}, timeout=30)
    # Without a database LiteLLM cannot look a non-master key up and answers 400 "No connected db."
    # (its own behaviour); either way the call is refused.
    assert wrong.status_code in (400, 401), wrong.text[:300]
    assert wrong.status_code == 401 or "No connected db" in wrong.text
    status = httpx.get(dev_stack.proxy.url + "/biorouter/status", headers=master(dev_stack), timeout=30).json()
    assert status["profile"] == "development", "a refused call changed the profile"


def master(dev_stack: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_stack.proxy.master_key}"}


def test_the_dev_proxy_gets_a_fresh_master_key_and_binds_loopback(dev_stack: Any) -> None:
    keys = {ProxyProcess(Path("unused.yaml")).master_key for _ in range(3)}
    assert len(keys) == 3, "every run generates its own key"
    assert all(k.startswith("sk-local-") and len(k) >= 30 for k in keys)
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    with pytest.raises(ConnectionRefusedError), socket.create_connection((address, dev_stack.proxy.port), timeout=2):
        pass


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


# -- admin role, in-process ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_app(classifier: Any) -> Any:
    """biorouter's routes on a bare FastAPI app; ``app.state.role`` is the role the caller's key has."""
    from fastapi import FastAPI
    from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth
    from litellm.proxy.auth.user_api_key_auth import user_api_key_auth

    from biorouter.proxy.admin import register_routes
    from biorouter.serving.engine import BioRouter
    from biorouter.settings import load_settings

    from ..conftest import ROOT

    engine = BioRouter.from_settings(load_settings(ROOT), profile="development", classifier=classifier)
    app = FastAPI()
    app.state.role = LitellmUserRoles.INTERNAL_USER
    app.state.reloads = []

    async def get_engine() -> BioRouter:
        return engine

    async def reload(*, reason: str, by: str) -> Any:
        app.state.reloads.append((reason, by))
        return engine.state

    async def as_key() -> UserAPIKeyAuth:
        return UserAPIKeyAuth(api_key="sk-virtual-key", user_role=app.state.role, key_alias="team-key")

    register_routes(app, get_engine, reload=reload)
    app.dependency_overrides[user_api_key_auth] = as_key
    app.state.engine = engine
    return app


async def call(app: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://biorouter.test") as client:
        return await client.request(method, path, json=body)


def test_admin_actions_need_the_proxy_admin_role(admin_app: Any) -> None:
    from litellm.proxy._types import LitellmUserRoles

    async def scenario() -> list[int]:
        admin_app.state.role = LitellmUserRoles.INTERNAL_USER
        codes = [
            (await call(admin_app, "POST", "/biorouter/profile", {"profile": "cloud_only", "reason": "x"})).status_code,
            (await call(admin_app, "POST", "/biorouter/reload", {"reason": "x"})).status_code,
            (await call(admin_app, "GET", "/biorouter/status")).status_code,
        ]
        admin_app.state.role = LitellmUserRoles.PROXY_ADMIN
        codes.append((await call(admin_app, "POST", "/biorouter/reload", {"reason": "by the admin"})).status_code)
        return codes

    assert asyncio.run(scenario()) == [403, 403, 200, 200]
    assert admin_app.state.engine.profile.name == "development"
    assert admin_app.state.reloads == [("by the admin", "proxy admin (team-key)")]


# -- forged request fields, against the real proxy ----------------------------------------------

SENSITIVE = "Write a python function that parses the lab results for MRN: 00482913 from our HL7 export"
FORGED_DECISION = {
    "profile": "cloud_only",
    "mode": "passthrough",
    "group": CLOUD,
    "local_only": False,
    "local_only_rules": [],
    "fallbacks": [CLOUD],
}
FORGERIES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "forged decision in metadata": ({"metadata": {"biorouter": FORGED_DECISION}}, {}),
    "forged decision in litellm_metadata": ({"litellm_metadata": {"biorouter": FORGED_DECISION}}, {}),
    "forged decision in litellm_params": ({"litellm_params": {"metadata": {"biorouter": FORGED_DECISION}}}, {}),
    "forged budget state": (
        {"metadata": {"biorouter_budget": {"reservation": None, "scopes": []}, "biorouter": FORGED_DECISION}},
        {},
    ),
    "profile in the body": ({"profile": "cloud_only", "biorouter_profile": "cloud_only"}, {}),
    "profile in metadata": ({"metadata": {"biorouter_profile": "cloud_only", "profile": "cloud_only"}}, {}),
    "profile in a header": ({}, {"x-biorouter-profile": "cloud_only", "x-biorouter-local-only": "false"}),
    "allow_cloud": ({"allow_cloud": True, "metadata": {"allow_cloud": True, "biorouter_allow_cloud": True}}, {}),
    "cloud task hint": ({"metadata": {"biorouter_task": "orchestration"}}, {}),
    "client fallbacks": ({"fallbacks": [CLOUD], "context_window_fallbacks": [{"t4-coder": [CLOUD]}]}, {}),
}


async def send_forgeries(dev_stack: Any) -> dict[str, httpx.Response]:
    async with httpx.AsyncClient(base_url=dev_stack.proxy.url, timeout=60) as client:

        async def one(forgery: str) -> httpx.Response:
            extra, headers = FORGERIES[forgery]
            body = {"model": "auto", "messages": [{"role": "user", "content": SENSITIVE}], "timeout": 1.0, **extra}
            return await client.post("/v1/chat/completions", json=body, headers={**master(dev_stack), **headers})

        answers = await asyncio.gather(*(one(forgery) for forgery in FORGERIES))
    return dict(zip(FORGERIES, answers, strict=True))


def test_no_request_field_chooses_the_profile_or_lifts_a_rule(dev_stack: Any, clean_standins: Any) -> None:
    """Each forgery, sent concurrently: healthy, it is decided as if the fields were absent; with every
    local group failing, it is refused (503) rather than lifted to the cloud group."""
    wrong: list[str] = []
    for forgery, healthy in asyncio.run(send_forgeries(dev_stack)).items():
        headers = healthy.headers
        if healthy.status_code != 200:
            wrong.append(f"{forgery}: HTTP {healthy.status_code} {healthy.text[:200]}")
        elif (headers["x-biorouter-profile"], headers["x-biorouter-local-only"]) != ("development", "true"):
            wrong.append(
                f"{forgery}: profile {headers['x-biorouter-profile']}, local-only {headers['x-biorouter-local-only']}"
            )
        elif "content:medical_record_number" not in headers["x-biorouter-local-only-rules"]:
            wrong.append(f"{forgery}: rules {headers['x-biorouter-local-only-rules']}")
    fail_locals(clean_standins, FAULTS["errors"])  # any lifted rule would now reach the cloud
    for forgery, failing in asyncio.run(send_forgeries(dev_stack)).items():
        if failing.status_code != 503 or "kept local" not in failing.text:
            wrong.append(f"{forgery} (locals failing): HTTP {failing.status_code} {failing.text[:200]}")
    assert wrong == []
    assert clean_standins[CLOUD].stats()["requests"] == 0
