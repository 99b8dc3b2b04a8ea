"""Sensitive data never reaches a cloud provider through ``BioRouter.acompletion()``, whatever fails.

A real ``litellm.Router`` sends real HTTP to the stand-ins of the development profile; the
``deepseek-v3`` stand-in plays the cloud provider and counts every request it receives. Each fault
state is applied to every local stand-in at once, so the only way a request could be answered
is by the cloud: the assertion is that local-only requests never are.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
import yaml
from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments

from biorouter.cli.main import main as cli
from biorouter.errors import KeptLocalError
from biorouter.governance.guard import ensure_guard_registered
from biorouter.routing.catalogue import Catalogue
from biorouter.routing.profiles import Behaviour
from biorouter.serving.adapter import litellm_arguments
from biorouter.serving.audit import AuditLog, read_records
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

from ..conftest import ROOT
from ..governance_cases import CLOUD, FAULTS, LOCAL_GROUPS, ORDINARY, REQUEST_TIMEOUT_S, SENSITIVE, fail_locals


@pytest.fixture(scope="module")
def engine(dev_stack, classifier) -> BioRouter:  # type: ignore[no-untyped-def]
    return BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )


@pytest.fixture
def audit(engine: BioRouter, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "audit.jsonl"
    previous, engine.audit = engine.audit, AuditLog(path)
    yield path
    engine.audit = previous


def answered_by(response: Any) -> str:
    return str(response.choices[0].message.content).split("]")[0].lstrip("[")


async def send_all(engine: BioRouter, prompts: list[tuple[str, str | None]]) -> list[Any]:
    async def one(text: str, hint: str | None) -> Any:
        metadata = {"biorouter_task": hint} if hint else {}
        messages = [{"role": "user", "content": text}]
        return await engine.acompletion(messages, timeout=REQUEST_TIMEOUT_S, metadata=metadata)

    return await asyncio.gather(*(one(text, hint) for text, hint in prompts), return_exceptions=True)


@pytest.mark.parametrize("state", list(FAULTS))
async def test_sensitive_requests_are_answered_locally_or_refused_never_by_the_cloud(
    engine: BioRouter, clean_standins: Any, audit: Path, state: str
) -> None:
    fail_locals(clean_standins, FAULTS[state])
    results = await send_all(engine, [(text, None) for text in SENSITIVE])

    assert clean_standins[CLOUD].stats()["requests"] == 0
    for text, result in zip(SENSITIVE, results, strict=True):
        if state == "healthy":
            assert not isinstance(result, BaseException), f"{text!r} failed: {result!r}"
            assert answered_by(result) in LOCAL_GROUPS
            assert result._hidden_params["biorouter"].local_only is True
        else:
            assert isinstance(result, KeptLocalError), f"{text!r} gave {result!r}"
            assert str(result).startswith("request kept local (")
            assert "no local deployment could serve it" in str(result)

    records = list(read_records(audit))
    assert len(records) == len(SENSITIVE)
    expected = "served" if state == "healthy" else "refused"
    assert {r.outcome for r in records} == {expected}
    if state == "healthy":
        assert {r.locality for r in records} == {"local"}
        assert all(r.deployment_id and r.group in LOCAL_GROUPS for r in records)
    assert all(r.rules for r in records)


@pytest.mark.parametrize("state", list(FAULTS))
async def test_ordinary_requests_still_fall_back_to_the_cloud_where_the_profile_allows(
    engine: BioRouter, clean_standins: Any, state: str
) -> None:
    fail_locals(clean_standins, FAULTS[state])
    results = await send_all(engine, list(ORDINARY))

    for (text, _), result in zip(ORDINARY, results, strict=True):
        assert not isinstance(result, BaseException), f"{text!r} failed: {result!r}"
        assert result._hidden_params["biorouter"].local_only is False
        assert answered_by(result) == (CLOUD if state != "healthy" else answered_by(result))
        if state == "healthy":
            assert answered_by(result) in LOCAL_GROUPS
    assert clean_standins[CLOUD].stats()["requests"] == (0 if state == "healthy" else len(ORDINARY))


async def test_naming_the_cloud_group_with_identifiers_is_refused_before_any_call(
    engine: BioRouter, clean_standins: Any, audit: Path
) -> None:
    messages = [{"role": "user", "content": "Patient ID PT-00923: summarise his last three visits"}]
    with pytest.raises(KeptLocalError, match="names cloud group 'deepseek-v3' but must stay local"):
        await engine.acompletion(messages, model=CLOUD)
    assert sum(s.stats()["requests"] for s in clean_standins) == 0
    [record] = read_records(audit)
    assert (record.outcome, record.rules[0]) == ("refused", "content:medical_record_number")


async def test_a_task_hint_does_not_lift_the_content_rule(engine: BioRouter, clean_standins: Any) -> None:
    fail_locals(clean_standins, FAULTS["errors"])
    messages = [{"role": "user", "content": "Format this as a table: Jane Okafor, DOB 12/03/1971, HbA1c 7.9"}]
    with pytest.raises(KeptLocalError, match=r"sensitive content \(date_of_birth\)"):
        await engine.acompletion(messages, metadata={"biorouter_task": "documentation"})
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_an_unloadable_name_model_keeps_the_request_local_and_audits_why(
    engine: BioRouter, clean_standins: Any, audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biorouter.governance import people

    monkeypatch.setattr(people, "MODEL_PACKAGE", "biorouter_no_such_spacy_model")
    people.reset()
    try:
        fail_locals(clean_standins, FAULTS["errors"])
        messages = [{"role": "user", "content": "Could my sister Ingrid Halvorsen pick up the results on Friday?"}]
        with pytest.raises(KeptLocalError, match=r"detector:unavailable"):
            await engine.acompletion(messages, metadata={"biorouter_task": "orchestration"})
        assert clean_standins[CLOUD].stats()["requests"] == 0
        [record] = read_records(audit)
        assert "content:detector:unavailable" in record.rules
    finally:
        monkeypatch.undo()
        people.reset()


async def test_identifiers_in_an_earlier_turn_keep_the_conversation_local(
    engine: BioRouter, clean_standins: Any
) -> None:
    fail_locals(clean_standins, FAULTS["errors"])
    messages = [
        {"role": "system", "content": "You help the clinical genomics team."},
        {"role": "user", "content": "Our proband is NHS number 943 476 5919; the trio VCF is attached."},
        {"role": "assistant", "content": "Understood."},
        {"role": "user", "content": "write a python function that reverses the order of words in a sentence"},
    ]
    with pytest.raises(KeptLocalError, match="national_id"):
        await engine.acompletion(messages)
    assert clean_standins[CLOUD].stats()["requests"] == 0


# --- the second wall on its own -------------------------------------------------------------


@pytest.fixture
def leaky_home(tmp_path: Path) -> Path:
    """A copy of the checkout's configuration with one misconfigured profile added."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "biorouter.yaml").write_text((ROOT / "biorouter.yaml").read_text())
    (home / "utterances").symlink_to(ROOT / "utterances")
    (home / "litellm_config").symlink_to(ROOT / "litellm_config")
    profiles = home / "profiles"
    profiles.mkdir()
    development = yaml.safe_load((ROOT / "profiles" / "development.yaml").read_text())
    leaky = copy.deepcopy(development)
    leaky["name"] = "leaky"
    leaky["routes"]["biomedical"] = {"group": "t4-bio", "allow_cloud": False, "fallbacks": [CLOUD]}
    (profiles / "development.yaml").write_text(yaml.safe_dump(development))
    (profiles / "leaky.yaml").write_text(yaml.safe_dump(leaky))
    return home


def test_validate_flags_a_cloud_fallback_on_a_local_only_route(
    leaky_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIOROUTER_HOME", str(leaky_home))
    assert cli(["validate"]) == 1
    out = capsys.readouterr().out
    assert (
        "profiles/leaky.yaml: routes -> biomedical -> fallbacks -> 0: 'deepseek-v3' is a cloud group but the "
        "route sets allow_cloud: false" in out
    )


async def test_misconfigured_cloud_fallback_is_blocked_at_run_time_by_both_walls(
    leaky_home: Path, dev_stack: Any, classifier: Any, clean_standins: Any
) -> None:
    leaky = BioRouter.from_settings(
        load_settings(leaky_home), profile="leaky", litellm_config=dev_stack.config_path, classifier=classifier
    )
    bio = [{"role": "user", "content": SENSITIVE[0]}]
    decision = await leaky.aroute(bio)
    assert CLOUD not in decision.fallbacks  # first wall: decide() skipped it and says so
    assert f"group '{CLOUD}' is cloud: skipped for a local-only request" in decision.reasons

    clean_standins["t4-bio"].set_fault(error_rate=1.0, status=500)
    # Second wall alone: hand LiteLLM the misconfigured chain as if decide() had let it through.
    forced = litellm_arguments(decision, {"model": "auto"}, leaky.profile)
    forced["fallbacks"] = [{"t4-bio": [CLOUD]}]
    forced["context_window_fallbacks"] = [{"t4-bio": [CLOUD]}]
    with pytest.raises(Exception, match="biorouter guard: request kept local"):
        await leaky.router.acompletion(messages=bio, **forced)
    assert clean_standins["t4-bio"].stats()["errors_injected"] >= 1
    assert clean_standins[CLOUD].stats()["requests"] == 0


async def test_guard_drops_the_cloud_deployment_of_a_mixed_group_on_every_request(
    dev_stack: Any, clean_standins: Any
) -> None:
    """A group with a local and a cloud deployment: LiteLLM load-balances, the guard keeps only local."""
    config = yaml.safe_load(dev_stack.config_path.read_text())
    model_list = [d for d in config["model_list"] if d["model_name"] == "t4-generalist"]
    cloud_twin = copy.deepcopy(model_list[0])
    cloud_twin["litellm_params"]["api_base"] = clean_standins[CLOUD].api_base
    cloud_twin["model_info"]["locality"] = "cloud"
    model_list.append(cloud_twin)
    assert Catalogue.from_model_list(model_list).groups["t4-generalist"].locality == "cloud"  # mixed counts as cloud
    ensure_guard_registered()
    router = litellm.Router(model_list=model_list, routing_strategy="simple-shuffle")
    local_only = {"biorouter": {"local_only": True, "local_only_rules": ["content:phone_number"]}}
    messages = [{"role": "user", "content": "hello"}]

    for _ in range(20):
        await router.acompletion(model="t4-generalist", messages=messages, metadata=local_only)
    assert clean_standins[CLOUD].stats()["requests"] == 0
    assert clean_standins["t4-generalist"].stats()["requests"] == 20

    for _ in range(20):  # without the local-only mark both deployments serve: the filter is what held
        await router.acompletion(model="t4-generalist", messages=messages, metadata={})
    assert clean_standins[CLOUD].stats()["requests"] > 0


# --- side doors -------------------------------------------------------------------------------


@pytest.fixture
def response_cache() -> Iterator[None]:
    """LiteLLM's in-process response cache (a stand-in for the shared Redis cache, same code path)."""
    previous = litellm.cache
    litellm.cache = litellm.Cache(type="local")  # type: ignore[attr-defined]
    yield
    litellm.cache = previous


async def test_local_only_answers_are_not_written_to_a_shared_response_cache(
    dev_stack: Any, classifier: Any, clean_standins: Any, response_cache: None
) -> None:
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=dev_stack.config_path, classifier=classifier
    )
    engine.profile = engine.profile.model_copy(update={"behaviour": Behaviour(num_retries=1, cache="shared")})
    ordinary = [{"role": "user", "content": ORDINARY[0][0]}]
    sensitive = [{"role": "user", "content": SENSITIVE[1]}]
    for _ in range(2):
        await engine.acompletion(ordinary, caching=True)
        await engine.acompletion(sensitive, caching=True)
    assert clean_standins["t4-coder"].stats()["requests"] >= 1
    total_local = sum(clean_standins[g].stats()["requests"] for g in LOCAL_GROUPS)
    # the ordinary request is answered once and then from the cache; the sensitive one both times
    assert total_local == 3


# --- nothing local left ---------------------------------------------------------------------


def test_profile_without_local_groups_refuses_identifiers_without_calling_anyone(
    dev_stack: Any, classifier: Any, clean_standins: Any
) -> None:
    cloud_only = BioRouter.from_settings(
        load_settings(ROOT), profile="cloud_only", litellm_config=dev_stack.config_path, classifier=classifier
    )
    messages = [{"role": "user", "content": SENSITIVE[1]}]
    with pytest.raises(KeptLocalError, match=r"request kept local \(sensitive content \(medical_record_number\)"):
        asyncio.run(cloud_only.acompletion(messages))
    assert sum(s.stats()["requests"] for s in clean_standins) == 0


async def test_cooled_down_local_deployments_do_not_widen_to_the_cloud(
    dev_stack: Any, classifier: Any, clean_standins: Any, tmp_path: Path
) -> None:
    """Groups of two local deployments that LiteLLM has cooled down: a local-only request is refused."""
    config = yaml.safe_load(dev_stack.config_path.read_text())
    for name in ("t4-bio", "t4-generalist"):
        [entry] = [d for d in config["model_list"] if d["model_name"] == name]
        twin = copy.deepcopy(entry)
        twin["litellm_params"]["model"] += "-replica"  # a second deployment of the group (its own id)
        config["model_list"].append(twin)
    config["router_settings"].update({"allowed_fails": 0, "cooldown_time": 60})
    path = tmp_path / "cooldown.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = BioRouter.from_settings(
        load_settings(ROOT), profile="development", litellm_config=path, classifier=classifier
    )
    bio = [{"role": "user", "content": SENSITIVE[0]}]
    fail_locals(clean_standins, FAULTS["errors"])
    with pytest.raises(KeptLocalError):
        await engine.acompletion(bio)
    clean_standins.clear_faults()  # the servers are fine again, but LiteLLM still has them in cooldown
    cooled = await async_get_cooldown_deployments(litellm_router_instance=engine.router, parent_otel_span=None)
    assert len(cooled) == 4

    with pytest.raises(KeptLocalError, match="no local deployment could serve it"):
        await engine.acompletion(bio)
    assert clean_standins[CLOUD].stats()["requests"] == 0
