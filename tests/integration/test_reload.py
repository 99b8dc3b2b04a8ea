"""Reloading profiles/ and utterances/ in a running engine: one snapshot, validated whole, swapped atomically.

Every test edits a private copy of the configuration (a temporary ``BIOROUTER_HOME``), never the
checkout. The engines share the session's loaded classifier; a utterance edit embeds only the
edited line (the document cache is the checkout's, keyed by line).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from biorouter import metrics
from biorouter.classify.classifier import Classification, TaskClassifier
from biorouter.errors import ConfigError
from biorouter.serving.engine import BioRouter
from biorouter.serving.reload import RoutingState, install_sighup
from biorouter.settings import load_settings
from biorouter.testing.standin import free_port

from ..conftest import ROOT

CODE = [{"role": "user", "content": "write a snakemake rule that aligns reads with bwa"}]


def make_home(folder: Path) -> Path:
    """A private copy of the configuration; the encoder cache is the checkout's (vectors by line)."""
    settings = yaml.safe_load((ROOT / "biorouter.yaml").read_text())
    settings["cache_dir"] = str(ROOT / ".cache")
    settings["profile"] = "development"
    (folder / "biorouter.yaml").write_text(yaml.safe_dump(settings))
    shutil.copytree(ROOT / "profiles", folder / "profiles")
    shutil.copytree(ROOT / "utterances", folder / "utterances")
    (folder / "litellm_config").symlink_to(ROOT / "litellm_config")
    return folder


def edit_profile(home: Path, change: Callable[[dict[str, Any]], None], name: str = "development") -> None:
    path = home / "profiles" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write(path: Path, text: str) -> None:
    path.write_text(text)


def reload_count(outcome: str) -> float:
    return metrics.REGISTRY.get_sample_value("biorouter_reloads_total", {"outcome": outcome}) or 0.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = make_home(tmp_path)
    monkeypatch.setenv("BIOROUTER_HOME", str(folder))
    return folder


@pytest.fixture
def engine(home: Path, classifier: TaskClassifier) -> Iterator[BioRouter]:
    built = BioRouter.from_settings(load_settings(home), profile="development", classifier=classifier)
    yield built
    built.close()


async def decided_group(engine: BioRouter, task: str = "code_generation") -> str:
    return (await engine.aroute(CODE, task=task)).group


async def test_a_valid_edit_is_swapped_in_whole(engine: BioRouter, home: Path) -> None:
    before = engine.state
    assert await decided_group(engine) == "t4-coder"

    def to_math(profile: dict[str, Any]) -> None:
        profile["routes"]["code_generation"] = {"group": "t4-math", "fallbacks": ["t4-generalist"]}

    edit_profile(home, to_math)
    assert engine.state is before, "editing a file changes nothing until the reload"
    state = await engine.reload(reason="test", by="pytest")
    assert state is engine.state
    assert state.generation == before.generation + 1
    assert state.classifier is before.classifier, "unchanged utterances keep the loaded classifier"
    decision = await engine.aroute(CODE, task="code_generation")
    assert (decision.group, decision.fallbacks, decision.generation) == ("t4-math", ("t4-generalist",), 2)
    assert decision.headers()["x-biorouter-generation"] == "2"
    assert engine.last_reload is not None
    assert engine.last_reload.outcome == "ok"
    assert engine.profile is state.profile
    assert engine.detector is state.detector


INVALID_EDITS: dict[str, tuple[Callable[[Path], None], str]] = {
    "typo in a key": (
        lambda home: edit_profile(home, lambda p: p["routes"]["code_generation"].update(fallbaks=["t4-generalist"])),
        "development.yaml: routes -> code_generation -> fallbaks:",
    ),
    "unknown group": (
        lambda home: edit_profile(home, lambda p: p["routes"]["code_generation"].update(group="t4-codr")),
        "unknown group 't4-codr'",
    ),
    "bad regex": (
        lambda home: edit_profile(
            home, lambda p: p["governance"]["sensitive_patterns"].append({"name": "broken", "regex": "SMP-(\\d+"})
        ),
        "development.yaml: governance -> sensitive_patterns",
    ),
    "cloud group on a local-only route": (
        lambda home: edit_profile(home, lambda p: p["routes"]["biomedical"].update(group="deepseek-v3")),
        "'deepseek-v3' is a cloud group but the route sets allow_cloud: false",
    ),
    "YAML syntax": (
        lambda home: write(home / "profiles" / "development.yaml", "routes: [unclosed\n"),
        "development.yaml",
    ),
    "another profile broken": (
        lambda home: edit_profile(home, lambda p: p.update(priorty=3), name="h100_local"),
        "h100_local.yaml: priorty:",
    ),
    "too few utterances": (
        lambda home: write(home / "utterances" / "safety.txt", "is this prompt an injection attempt?\n"),
        "utterances/safety.txt: has 1 utterances; a task needs at least 10",
    ),
}


@pytest.mark.parametrize("edit", sorted(INVALID_EDITS))
async def test_an_invalid_edit_is_rejected_and_the_last_good_configuration_serves_on(
    engine: BioRouter, home: Path, edit: str
) -> None:
    apply, expected = INVALID_EDITS[edit]
    before, rejected = engine.state, reload_count("rejected")
    apply(home)
    with pytest.raises(ConfigError) as raised:
        await engine.reload(reason=edit, by="pytest")
    assert expected in str(raised.value)
    assert engine.state is before
    assert await decided_group(engine) == "t4-coder"
    assert engine.last_reload is not None
    assert engine.last_reload.outcome == "rejected"
    assert any(expected in problem for problem in engine.last_reload.problems)
    assert reload_count("rejected") == rejected + 1


async def test_the_same_errors_as_biorouter_validate(engine: BioRouter, home: Path) -> None:
    from biorouter.serving.validate import validate_all

    INVALID_EDITS["unknown group"][0](home)
    with pytest.raises(ConfigError) as raised:
        await engine.reload()
    assert [str(p) for p in raised.value.problems] == [str(p) for p in validate_all(load_settings(home)).errors]


async def test_an_utterance_edit_rebuilds_the_classifier_on_the_same_encoder(engine: BioRouter, home: Path) -> None:
    before = engine.state
    path = home / "utterances" / "math_statistics.txt"
    path.write_text(path.read_text() + "fit a negative binomial model to the read counts per gene\n")
    state = await engine.reload()
    assert state.classifier is not before.classifier
    assert state.classifier.loaded
    assert state.classifier.embedder is not None
    assert before.classifier.embedder is not None
    assert state.classifier.embedder.encoder is before.classifier.embedder.encoder, "the encoder is not loaded twice"
    assert (await state.classifier.aclassify("fit a negative binomial model to the read counts")).task == (
        "math_statistics"
    )


class PausedClassifier:
    """Answers 'code_generation' only when released: holds a request mid-decision."""

    def __init__(self, real: TaskClassifier) -> None:
        self.embedder = real.embedder
        self._utterances = real._utterances  # the same utterances: a reload keeps this classifier
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.tasks = real.tasks
        self.keeps_text_local = True

    async def aclassify(self, text: str) -> Classification:
        self.entered.set()
        await self.release.wait()
        return Classification(task="code_generation", confidence=0.9, scores={"code_generation": 0.9})

    def begin(self, text: str) -> asyncio.Future[Classification]:
        return asyncio.ensure_future(self.aclassify(text))

    async def aload(self) -> None:
        return None


async def test_a_request_decides_with_the_snapshot_it_started_with(engine: BioRouter, home: Path) -> None:
    paused = PausedClassifier(engine.classifier)
    engine.classifier = paused  # type: ignore[assignment]
    started = engine.state
    request = asyncio.create_task(engine.prepare(CODE, "auto", {}))
    await asyncio.wait_for(paused.entered.wait(), 10)
    edit_profile(home, lambda p: p["routes"]["code_generation"].update(group="t4-math", fallbacks=["t4-generalist"]))
    swapped = await engine.reload()
    assert swapped.generation == started.generation + 1
    paused.release.set()
    decision, _, _ = await asyncio.wait_for(request, 10)
    assert (decision.group, decision.generation, decision.profile) == ("t4-coder", started.generation, "development")
    assert tuple(decision.fallbacks) == ("t4-generalist", "deepseek-v3")
    after, _, _ = await engine.prepare(CODE, "auto", {})
    assert (after.group, after.generation) == ("t4-math", swapped.generation)


async def test_concurrent_reloads_run_one_at_a_time(engine: BioRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    import biorouter.serving.engine as engine_module

    inside, most = 0, 0
    lock = threading.Lock()
    real = engine_module.load_state  # type: ignore[attr-defined]

    def counting(current: RoutingState, settings: Any, **kwargs: Any) -> Any:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # widen the window two unserialized reloads would overlap in
        try:
            return real(current, settings, **kwargs)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(engine_module, "load_state", counting)
    first = engine.state.generation
    states = await asyncio.gather(*(engine.reload(reason=f"r{n}") for n in range(4)))
    assert most == 1
    assert sorted(s.generation for s in states) == [first + 1, first + 2, first + 3, first + 4]
    assert engine.state.generation == first + 4


async def test_a_profile_switch_is_a_swap_too(engine: BioRouter) -> None:
    before = engine.state
    engine.switch_profile("cloud_only", reason="test", by="pytest")
    assert engine.state.generation == before.generation + 1
    assert engine.state.origin == "switch"
    assert engine.profile.name == "cloud_only"
    assert engine.detector is not before.detector
    # a reload keeps the switched profile
    assert (await engine.reload()).profile.name == "cloud_only"


def test_sighup_schedules_a_reload_on_the_running_loop() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        done = asyncio.Event()

        async def reload() -> None:
            seen.append("reloaded")
            done.set()

        assert install_sighup(reload)
        loop = asyncio.get_running_loop()
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(done.wait(), 5)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
        return seen

    assert asyncio.run(scenario()) == ["reloaded"]


def test_no_sighup_handler_without_a_running_loop() -> None:
    async def nothing() -> None:
        return None

    assert install_sighup(nothing) is False


async def test_an_unreachable_ledger_is_visible_in_the_decision(
    home: Path, classifier: TaskClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    engine = BioRouter.from_settings(load_settings(home), profile="development", classifier=classifier)
    try:
        decision = await engine.aroute(
            [{"role": "user", "content": "coordinate the agents for the nightly run"}], task="orchestration"
        )
    finally:
        await engine.ledger.aclose()
    assert decision.degraded == ("ledger:unavailable",)
    assert decision.headers()["x-biorouter-degraded"] == "ledger:unavailable"
    assert metrics.REGISTRY.get_sample_value("biorouter_degraded", {"component": "ledger"}) == 1.0


def _standin_overlay(folder: Path, profile: str = "development") -> Path:
    """The demo's deployment list: ``profile``'s groups only, as ``serve --dev`` writes it."""
    from biorouter.routing.profiles import load_profile
    from biorouter.testing.devstack import standin_config

    groups = load_profile(ROOT / "profiles" / f"{profile}.yaml").groups()
    base = yaml.safe_load((ROOT / "litellm_config" / "config.yaml").read_text())
    path = folder / "standins.yaml"
    path.write_text(yaml.safe_dump(standin_config(base, {g: f"http://127.0.0.1:9/{g}/v1" for g in groups})))
    return path


async def test_a_switch_runs_the_checks_of_a_reload_against_the_served_deployments(
    home: Path, tmp_path: Path, classifier: TaskClassifier
) -> None:
    """Issue 20: in the demo stack a switch to t4_hybrid was accepted, then every reload failed on it."""
    config = _standin_overlay(tmp_path)
    engine = BioRouter.from_settings(
        load_settings(home), profile="development", litellm_config=config, classifier=classifier
    )
    before = engine.state
    with pytest.raises(ConfigError) as caught:
        engine.switch_profile("t4_hybrid", reason="try the hybrid", by="pytest")
    assert "profiles/t4_hybrid.yaml: routes -> code_generation -> fallbacks -> 1: unknown group 'claude-sonnet'" in str(
        caught.value
    )
    assert engine.state is before, "a refused switch changes nothing"
    assert engine.session.summary().switches == ()
    assert (await engine.reload()).profile.name == "development"
    # a profile the served deployments hold is still switched to
    engine.switch_profile("development", reason="re-read", by="pytest")
    assert engine.state.origin == "switch"
