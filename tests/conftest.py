"""Shared fixtures: one loaded encoder and one stand-in stack (with one real proxy) per session.

Loading the encoder and starting ``litellm`` take seconds each, so every test that needs them
shares one instance; tests that inject faults clear them afterwards (``clean_standins``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from biorouter import offline

offline.apply()

ROOT = Path(__file__).resolve().parent.parent
ROUTING_DATA = ROOT / "tests" / "data" / "routing"  # the project's own labelled held-out prompts
EXTERNAL_EVAL = ROOT.parent / "shared" / "eval" / "routing_dev.jsonl"  # beside the checkout, never copied in

# Provider keys and biorouter settings a developer may have exported must not change results.
_ISOLATED_PREFIXES = ("BIOROUTER_",)
_ISOLATED_NAMES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "DEEPSEEK_API_KEY",
    "LITELLM_MASTER_KEY",
    "REDIS_URL",
)


@pytest.fixture(scope="session")
def session_audit_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where in-process engines write audit records unless a test points them elsewhere."""
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, session_audit_log: Path) -> None:
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name in _ISOLATED_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIOROUTER_HOME", str(ROOT))
    monkeypatch.setenv("BIOROUTER_AUDIT_LOG", str(session_audit_log))  # never into the checkout's logs/


@pytest.fixture(scope="session")
def shipped_settings():  # type: ignore[no-untyped-def]
    from biorouter.settings import load_settings

    return load_settings(ROOT)


@pytest.fixture(scope="session")
def classifier(shipped_settings):  # type: ignore[no-untyped-def]
    """The real default classifier over the shipped utterances, loaded once."""
    from biorouter.classify.classifier import TaskClassifier

    shared = TaskClassifier.from_settings(shipped_settings)
    shared.load()
    return shared


@pytest.fixture(scope="session")
def proxy_metrics_port() -> int:
    """The port the shared proxy serves biorouter's metrics on (BIOROUTER_METRICS_PORT)."""
    from biorouter.testing.standin import free_port

    return free_port()


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory, shipped_settings, proxy_metrics_port):  # type: ignore[no-untyped-def]
    """Stand-ins for every group of the development profile and a real litellm proxy over them.

    The proxy serves biorouter's metrics on ``proxy_metrics_port`` and writes the debug routing
    lines (BIOROUTER_DEBUG_ROUTING) to its log, ``run_dir / "proxy.log"``.
    """
    from biorouter.routing.profiles import load_profile
    from biorouter.testing.devstack import DevStack

    profile = load_profile(ROOT / "profiles" / "development.yaml")
    run_dir = tmp_path_factory.mktemp("devstack")
    stack = DevStack(
        shipped_settings.litellm_config_path,
        profile.groups(),
        run_dir=run_dir,
        env={
            "BIOROUTER_HOME": str(ROOT),
            "BIOROUTER_PROFILE": "development",
            "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl"),
            "BIOROUTER_METRICS_PORT": str(proxy_metrics_port),
            "BIOROUTER_DEBUG_ROUTING": "1",
        },
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def clean_standins(dev_stack) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Healthy stand-ins with zeroed counters before and after a test."""
    dev_stack.fleet.clear_faults()
    dev_stack.fleet.reset_all()
    yield dev_stack.fleet
    dev_stack.fleet.clear_faults()
    dev_stack.fleet.reset_all()
