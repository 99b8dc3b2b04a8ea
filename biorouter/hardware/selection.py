"""Which profile fits this machine: each profile's ``hardware`` needs against a :class:`Resources` snapshot.

``matches()`` is pure: a profile and a snapshot in, yes or no with the reasons out. ``select_profile()``
applies the rule: an explicit choice (``BIOROUTER_PROFILE``, ``--profile``, ``profile:`` in
``biorouter.yaml``) always wins, with a warning for every need the machine does not meet;
otherwise the compatible profile with the highest ``priority`` (ties broken by name, so the choice
is stable); if none fits, a :class:`SelectionError` lists every profile and why it did not.

The order itself lives in the profiles (their ``priority``), not here: with the shipped ones an
H100 selects ``h100_local``, L4 + T4 GPUs ``l4_t4_combined``, T4s ``t4_hybrid``, a machine with
only a DeepSeek key ``cloud_only``, and anything else ``development``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from biorouter.errors import ConfigError, Problem, SelectionError
from biorouter.hardware.resources import Resources
from biorouter.routing.profiles import HardwareNeeds, Profile

__all__ = ["AUTO_PROFILE", "Fit", "Selection", "matches", "select_profile"]

AUTO_PROFILE = "auto"  # the profile setting that asks for selection


class Fit(BaseModel):
    """Whether one profile fits, with every unmet need (``reasons``) and every met one (``met``)."""

    model_config = ConfigDict(frozen=True)

    profile: str
    priority: int
    ok: bool
    reasons: tuple[str, ...] = ()
    met: tuple[str, ...] = ()


class Selection(BaseModel):
    model_config = ConfigDict(frozen=True)

    profile: str
    explicit: bool
    fits: tuple[Fit, ...]
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        how = "chosen explicitly" if self.explicit else "selected automatically (highest priority that fits)"
        return f"profile '{self.profile}' {how}"


def _gpu_needs(needs: HardwareNeeds, resources: Resources, unmet: list[str], met: list[str]) -> None:
    types = {t.upper() for t in needs.gpu_types}
    wanted = max(needs.min_gpus, 1 if (types or needs.min_gpu_memory_gb > 0) else 0)
    if wanted == 0:
        return
    eligible = [
        gpu
        for gpu in resources.gpu.gpus
        if (not types or gpu.model.upper() in types) and gpu.memory_gb >= needs.min_gpu_memory_gb
    ]
    kind = "/".join(needs.gpu_types) if needs.gpu_types else "any"
    memory = f" with {needs.min_gpu_memory_gb:g} GB+" if needs.min_gpu_memory_gb else ""
    want = f"{wanted} {kind} GPU{'s' * (wanted != 1)}{memory}"
    if len(eligible) >= wanted:
        met.append(f"{want}: found {len(eligible)}")
        return
    if resources.gpu.gpus:
        kinds = Counter(f"{g.model} {g.memory_gb:g} GB" for g in resources.gpu.gpus)
        found = ", ".join(f"{count}× {kind}" for kind, count in kinds.items())
    else:
        found = f"no GPU ({resources.gpu.error})" if resources.gpu.error else "no GPU"
    unmet.append(f"needs {want}; found {found}")


def matches(profile: Profile, resources: Resources) -> Fit:
    """Does ``profile`` fit the machine ``resources`` describes? Every unmet need is a reason."""
    needs = profile.hardware
    unmet: list[str] = []
    met: list[str] = []
    _gpu_needs(needs, resources, unmet, met)

    slurm = resources.slurm
    if needs.slurm == "required":
        if slurm.in_job or slurm.available:
            met.append("SLURM")
        else:
            unmet.append(f"needs SLURM; {slurm.error or 'not in a SLURM job and sinfo unavailable'}")
    elif needs.slurm == "forbidden" and slurm.in_job:
        unmet.append(f"must not run inside a SLURM job (in job {slurm.job_id})")

    for name in needs.cloud_apis:
        if resources.key_is_set(name):
            met.append(f"{name} set")
        else:
            unmet.append(f"needs {name} set")

    healthy = resources.healthy_groups()
    for group in needs.healthy_groups:
        if group in healthy:
            met.append(f"{group} healthy")
            continue
        probes = [e for e in resources.endpoints if e.group == group]
        why = "; ".join(e.error or (f"HTTP {e.status}" if e.status else "unhealthy") for e in probes)
        why = why or "not a local group in litellm_config"
        unmet.append(f"needs {group} healthy ({why})")
    return Fit(profile=profile.name, priority=profile.priority, ok=not unmet, reasons=tuple(unmet), met=tuple(met))


def select_profile(profiles: Mapping[str, Profile], resources: Resources, explicit: str | None = None) -> Selection:
    """The explicit profile (with warnings for unmet needs), else the best that fits; SelectionError if none."""
    fits = tuple(
        matches(profile, resources) for profile in sorted(profiles.values(), key=lambda p: (-p.priority, p.name))
    )
    if explicit is not None and explicit != AUTO_PROFILE:
        if explicit not in profiles:
            available = ", ".join(sorted(profiles))
            raise ConfigError([Problem("profile", (), f"unknown profile '{explicit}' (available: {available})")])
        fit = next(f for f in fits if f.profile == explicit)
        warnings = tuple(f"profile '{explicit}' was chosen explicitly but {reason}" for reason in fit.reasons)
        return Selection(profile=explicit, explicit=True, fits=fits, warnings=warnings)
    for fit in fits:
        if fit.ok:
            return Selection(profile=fit.profile, explicit=False, fits=fits)
    lines = "\n".join(f"  {f.profile} (priority {f.priority}): {'; '.join(f.reasons)}" for f in fits)
    raise SelectionError(
        f"no profile fits this machine; choose one with BIOROUTER_PROFILE or --profile, or add one:\n{lines}"
    )
