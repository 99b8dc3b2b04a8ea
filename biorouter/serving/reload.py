"""The active routing configuration as one immutable snapshot, and reloading it from disk.

A request reads the profile several times (deciding, estimating its budget, turning the Decision
into LiteLLM arguments) with awaits in between. If those reads went to separate, separately
replaced attributes, a reload landing mid-request could mix two profiles. So everything a request
reads from the configuration lives in one :class:`RoutingState`; the engine holds it in one
attribute, replaces it with one assignment, and each request takes it once at its start.

:func:`load_state` builds the next snapshot: it runs exactly the checks of ``biorouter validate``
(every profile, every utterance file, the deployment list, with the same messages), checks the
active profile against the deployments this process really serves, and builds the task classifier
(sharing the loaded encoder, so only changed utterances are embedded). Any error raises
:class:`ConfigError` listing every problem; nothing is swapped and the last good snapshot keeps
serving. LiteLLM does not reload its own ``model_list``, so the deployment catalogue is kept:
changing deployments still needs a proxy restart.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from biorouter.classify.classifier import TaskClassifier
from biorouter.classify.utterances import load_utterances
from biorouter.errors import ClassifierError, ConfigError, Problem
from biorouter.files import display_path
from biorouter.governance.sensitivity import SensitivityDetector
from biorouter.routing.catalogue import Catalogue
from biorouter.routing.profiles import Profile, load_profiles
from biorouter.serving.validate import check_profile, validate_all
from biorouter.settings import Settings

__all__ = ["ReloadOutcome", "ReloadRecord", "RoutingState", "install_sighup", "load_state"]

logger = logging.getLogger("biorouter")

ReloadOutcome = Literal["ok", "rejected"]


@dataclasses.dataclass(frozen=True, eq=False)
class RoutingState:
    """What one request routes by: profile, its detector, the classifier and the catalogue, together.

    ``generation`` counts swaps (1 at start); it travels in the Decision and the
    ``x-biorouter-generation`` header, so a response shows which configuration decided it.
    """

    profile: Profile
    detector: SensitivityDetector
    classifier: TaskClassifier
    catalogue: Catalogue
    generation: int = 1
    loaded_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    origin: str = "start"  # start | reload | switch | set (a Python caller replaced a part)

    @classmethod
    def initial(cls, profile: Profile, classifier: TaskClassifier, catalogue: Catalogue) -> RoutingState:
        return cls(profile=profile, detector=profile.governance.detector(), classifier=classifier, catalogue=catalogue)

    def successor(self, origin: str, **parts: Any) -> RoutingState:
        """The next generation with ``parts`` replaced (a new profile brings its own detector)."""
        if "profile" in parts and "detector" not in parts:
            parts["detector"] = parts["profile"].governance.detector()
        return dataclasses.replace(
            self, generation=self.generation + 1, loaded_at=datetime.now(UTC), origin=origin, **parts
        )


class ReloadRecord(BaseModel):
    """One reload attempt, as the status endpoint and the log show it."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    at: datetime
    by: str
    reason: str
    outcome: ReloadOutcome
    generation: int  # the generation serving after the attempt (unchanged when rejected)
    profile: str
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    seconds: float


def load_state(
    current: RoutingState, settings: Settings, *, origin: str = "reload", profile: str | None = None
) -> tuple[RoutingState, tuple[str, ...]]:
    """The next snapshot from the files on disk, fully validated, and the validation warnings.

    ``profile`` names the profile to activate (a switch); by default the current one stays (a
    reload). A switch and a reload run the same checks, so a profile a reload would reject is never
    switched to. Blocking (files, validation, embedding changed utterances): call it off the event loop.
    Raises :class:`ConfigError` with every problem when anything is wrong.
    """
    name = profile or current.profile.name
    report = validate_all(settings)
    if report.errors:
        raise ConfigError(report.errors)
    profiles = load_profiles(settings.profiles_path, display_root=settings.home)
    if name not in profiles:
        known = ", ".join(sorted(profiles))
        message = f"unknown profile '{name}'" if profile is not None else f"the active profile '{name}' is gone"
        raise ConfigError([Problem("profiles", (), f"{message} (available: {known})")])
    chosen = profiles[name]
    # validate_all checks profiles against litellm_config on disk; the proxy may serve another list.
    source = display_path(settings.profiles_path / f"{name}.yaml", settings.home)
    live = [p for p in check_profile(source, chosen, current.catalogue, report.tasks) if p.severity == "error"]
    if live:
        raise ConfigError(live)
    utterances = load_utterances(settings.utterances_path, display_root=settings.home)
    classifier = _classifier_for(current.classifier, utterances, settings)
    state = current.successor(origin, profile=chosen, classifier=classifier)
    return state, tuple(str(p) for p in report.warnings)


def _classifier_for(current: TaskClassifier, utterances: Mapping[str, list[str]], settings: Settings) -> TaskClassifier:
    """The current classifier when the utterances did not change; else a new one, loaded, on the same encoder.

    Utterance vectors are cached on disk by line, so a new index embeds only the edited lines;
    an encoder or index failure rejects the reload like a file error would.
    """
    if getattr(current, "_utterances", None) == dict(utterances):
        return current
    encoder = current.embedder.encoder if current.embedder is not None else None
    classifier = TaskClassifier.from_settings(settings, encoder=encoder)
    try:
        classifier.load()
    except ClassifierError as e:
        raise ConfigError([Problem("classifier", (), f"cannot build the task index from utterances/: {e}")]) from e
    return classifier


def install_sighup(callback: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
    """Run ``callback()`` as a task on the running event loop at each SIGHUP; True when installed.

    Called from inside the proxy's event loop (its start-up imports the hook). The handler only
    schedules the coroutine, so the loop never blocks; uvicorn owns SIGINT and SIGTERM, not SIGHUP.
    Without a running loop in the main thread (a script, a worker thread) nothing is installed.
    """
    import asyncio
    import threading

    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    running: set[asyncio.Task[Any]] = set()

    def on_signal() -> None:
        task = loop.create_task(callback())
        running.add(task)  # keep a reference until it finishes
        task.add_done_callback(running.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (NotImplementedError, RuntimeError, ValueError) as e:
        logger.warning("biorouter: SIGHUP reload not available here (%s); use POST /biorouter/reload", e)
        return False
    return True
