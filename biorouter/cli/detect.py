"""``biorouter detect``: what this machine offers (GPUs, SLURM, cloud keys, local endpoints) and the profile it gets.

Exit status: 0 when a profile was chosen, 1 when none fits (or the configuration is broken).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from biorouter.hardware.resources import Resources
    from biorouter.hardware.selection import Selection

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="show GPUs, SLURM, cloud keys and local endpoint health, and the profile they select",
        description=__doc__,
    )
    parser.add_argument("--json", action="store_true", help="print the snapshot and the selection as JSON")
    parser.add_argument(
        "--timeout", type=_positive, default=1.0, metavar="S", help="per-probe timeout in seconds (default 1)"
    )
    parser.set_defaults(handler=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def run(args: argparse.Namespace) -> int:
    from biorouter.errors import SelectionError
    from biorouter.hardware.resources import detect
    from biorouter.hardware.selection import select_profile
    from biorouter.routing.profiles import load_profiles
    from biorouter.settings import load_settings

    settings = load_settings()
    profiles = load_profiles(settings.profiles_path)
    resources = detect(settings, profiles=profiles, timeout_s=args.timeout)
    selection: Selection | None = None
    failure = None
    try:
        selection = select_profile(profiles, resources, explicit=settings.active_profile)
    except SelectionError as e:
        failure = str(e)
    if args.json:
        payload = resources.model_dump(mode="json")
        payload["healthy_groups"] = sorted(resources.healthy_groups())
        payload["selection"] = (
            selection.model_dump(mode="json") if selection is not None else {"profile": None, "error": failure}
        )
        print(json.dumps(payload, indent=2))
    else:
        print(render(resources))
        if selection is not None:
            print(f"{'selection':<11} {selection.describe()}")
            for warning in selection.warnings:
                print(f"{'':<11} warning: {warning}")
        else:
            print(f"{'selection':<11} none: {failure}")
    return 0 if selection is not None else 1


def _gpus(resources: Resources) -> str:
    info = resources.gpu
    if not info.gpus:
        return f"none ({info.error})" if info.error else "none"
    kinds = Counter((gpu.model, gpu.memory_gb) for gpu in info.gpus)
    text = ", ".join(f"{count} × {model} ({memory:g} GB)" for (model, memory), count in kinds.items())
    return f"{text}; {info.error}" if info.error else text


def _slurm(resources: Resources) -> str:
    slurm = resources.slurm
    parts = []
    if slurm.in_job:
        parts.append(f"in job {slurm.job_id}, partition {slurm.partition or 'unknown'}")
    else:
        parts.append("not in a job")
    if slurm.available:
        names = [f"{p}*" if p == slurm.default_partition else p for p in slurm.partitions]
        parts.append(f"partitions {' '.join(names) or '-'}")
    if slurm.error:
        parts.append(slurm.error)
    return "; ".join(parts)


def render(resources: Resources) -> str:
    """The snapshot as a table for people."""
    host = resources.host
    memory = f", {host.memory_gb:g} GB memory" if host.memory_gb is not None else ""
    keys = ", ".join(f"{name} {'set' if is_set else 'unset'}" for name, is_set in resources.cloud_keys.items())
    lines = [
        f"{'host':<11} {host.hostname}: {host.cpu_count or '?'} CPUs{memory}; {host.platform}",
        f"{'GPUs':<11} {_gpus(resources)}",
        f"{'SLURM':<11} {_slurm(resources)}",
        f"{'cloud keys':<11} {keys or '-'}",
        f"{'endpoints':<11} {len(resources.healthy_groups())} local group(s) healthy",
    ]
    width = max((len(e.group) for e in resources.endpoints), default=0)
    for e in resources.endpoints:
        if e.healthy:
            state = f"healthy   HTTP {e.status} in {e.latency_ms:g} ms  {e.api_base}"
        else:
            where = f"  {e.api_base}" if e.api_base else ""
            state = f"unhealthy {e.error or f'HTTP {e.status}'}{where}"
        lines.append(f"  {e.group:<{width}}  {state}")
    lines.append(f"{'detection':<11} {resources.duration_s:.2f} s")
    return "\n".join(lines)
