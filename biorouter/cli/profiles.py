"""``biorouter profiles``: every profile, whether it fits this machine, and why.

Detects what the machine offers (GPUs, SLURM, cloud keys, local endpoints; see ``biorouter
detect``), then lists the profiles by priority with the needs each one meets and misses. The
profile automatic selection would pick is marked ``recommended``; one named by
``BIOROUTER_PROFILE`` or ``profile:`` in biorouter.yaml (anything but ``auto``) is marked
``configured``, and it is the active one whether it fits or not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biorouter.hardware.resources import Resources
    from biorouter.hardware.selection import Fit, Selection
    from biorouter.routing.profiles import Profile
    from biorouter.settings import Settings

__all__ = ["Survey", "register", "run", "survey"]


def positive_seconds(text: str) -> float:
    """argparse type for ``--timeout``: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0 seconds: '{text}'")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profiles",
        help="list every profile: does it fit this machine, and why",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the fits and the selection as JSON")
    parser.add_argument(
        "--timeout", type=positive_seconds, default=1.0, metavar="S", help="per-probe timeout, seconds (default 1)"
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Survey:
    """Every profile held against one detection of this machine: what ``profiles`` and ``select`` show."""

    settings: Settings
    profiles: dict[str, Profile]
    resources: Resources
    fits: tuple[Fit, ...]  # by priority, highest first (ties by name), as selection orders them
    recommended: Selection | None  # automatic selection; None when nothing fits
    no_fit: str | None  # the SelectionError text when nothing fits
    configured: str | None  # BIOROUTER_PROFILE or profile: in biorouter.yaml, unless "auto"

    @property
    def configured_source(self) -> str:
        return "BIOROUTER_PROFILE" if os.environ.get("BIOROUTER_PROFILE") else "biorouter.yaml"

    def description(self, name: str) -> str:
        return first_sentence(self.profiles[name].description)


def survey(timeout_s: float) -> Survey:
    """Load the settings and profiles, detect this machine, and hold every profile against it."""
    from biorouter.errors import SelectionError
    from biorouter.hardware.resources import detect
    from biorouter.hardware.selection import AUTO_PROFILE, matches, select_profile
    from biorouter.routing.profiles import load_profiles
    from biorouter.settings import load_settings

    settings = load_settings()
    profiles = load_profiles(settings.profiles_path, display_root=settings.home)
    resources = detect(settings, profiles=profiles, timeout_s=timeout_s)
    recommended: Selection | None
    try:
        recommended = select_profile(profiles, resources, explicit=None)
        fits, no_fit = recommended.fits, None
    except SelectionError as e:
        ranked = sorted(profiles.values(), key=lambda p: (-p.priority, p.name))
        recommended, fits, no_fit = None, tuple(matches(p, resources) for p in ranked), str(e)
    active = settings.active_profile
    configured = None if active == AUTO_PROFILE else active
    return Survey(settings, profiles, resources, fits, recommended, no_fit, configured)


def first_sentence(text: str) -> str:
    """The description's first sentence on one line (profile descriptions are folded YAML)."""
    flat = " ".join(text.split())
    return re.split(r"(?<=[.!?])\s", flat, maxsplit=1)[0]


def machine_summary(resources: Resources) -> str:
    """One line: what detection found, with the reason when something is missing."""
    gpu = resources.gpu
    if gpu.gpus:
        kinds = ", ".join(f"{sum(g.model == m for g in gpu.gpus)}× {m}" for m in gpu.models)
        gpus = f"GPUs: {kinds}"
    else:
        gpus = f"no GPU ({gpu.error})" if gpu.error else "no GPU"
    slurm = resources.slurm
    if slurm.in_job:
        where = f"SLURM job {slurm.job_id}" + (f" on {slurm.partition}" if slurm.partition else "")
    else:
        where = "SLURM available" if slurm.available else "no SLURM"
    keys = [name for name, present in sorted(resources.cloud_keys.items()) if present]
    healthy = sorted(resources.healthy_groups())
    return (
        f"this machine: {gpus}; {where}; cloud keys set: {', '.join(keys) or 'none'}; "
        f"healthy local groups: {', '.join(healthy) or 'none'}"
    )


def fit_payload(found: Survey, fit: Fit) -> dict[str, Any]:
    return {**fit.model_dump(mode="json"), "description": found.description(fit.profile)}


def marks(found: Survey, name: str) -> list[str]:
    tags = []
    if found.recommended is not None and found.recommended.profile == name:
        tags.append("recommended")
    if found.configured == name:
        tags.append(f"configured in {found.configured_source}")
    return tags


def run(args: argparse.Namespace) -> int:
    from biorouter.errors import BiorouterError
    from biorouter.hardware.selection import select_profile

    found = survey(args.timeout)
    active: Selection | None = found.recommended
    active_error = found.no_fit
    if found.configured is not None:
        try:
            active, active_error = select_profile(found.profiles, found.resources, explicit=found.configured), None
        except BiorouterError as e:  # a configured profile without a file: shown, not fatal, for a listing
            active, active_error = None, str(e)

    if args.json:
        payload = {
            "fits": [fit_payload(found, fit) for fit in found.fits],
            "recommended": found.recommended.profile if found.recommended else None,
            "configured": found.configured,
            "selection": active.model_dump(mode="json", exclude={"fits"}) if active else None,
            "error": active_error,
        }
        print(json.dumps(payload, indent=2))
        return 0

    print(machine_summary(found.resources))
    for fit in found.fits:
        tags = marks(found, fit.profile)
        verdict = "FITS" if fit.ok else "does not fit"
        print(f"\n{fit.profile}  (priority {fit.priority})  {verdict}{'  <- ' + ', '.join(tags) if tags else ''}")
        print(f"    {found.description(fit.profile)}")
        for reason in fit.reasons:
            print(f"    unmet: {reason}")
        for need in fit.met:
            print(f"    met:   {need}")
    print()
    if active is not None:
        print(f"active: {active.describe()}")
        for warning in active.warnings:
            print(f"warning: {warning}")
    elif active_error is not None:
        print(f"active: none: {active_error}")
    if found.recommended is not None and (active is None or active.profile != found.recommended.profile):
        print(f"recommended for this machine: {found.recommended.profile} (biorouter select shows how to switch)")
    return 0
