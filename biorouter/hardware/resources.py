"""What this machine offers, in one immutable snapshot: GPUs, SLURM, cloud keys, local endpoints, host.

Profile selection (:mod:`biorouter.hardware.selection`) compares each profile's ``hardware`` needs with a
:class:`Resources` snapshot. Detection never raises for a missing tool or a dead endpoint: "no
nvidia-smi", "sinfo timed out" and "t4-bio refused the connection" are facts in the snapshot, so a
laptop, a GPU node and a SLURM job all get an answer, and the answer says why.

Detection runs every probe at once (``nvidia-smi``, ``sinfo``/``squeue``, one HTTP check per local
deployment) with short timeouts, so it finishes within about two seconds even when every endpoint
is dead. Cloud API keys are reported as set or unset, never their values.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from biorouter.hardware.facts import ENV_PREFIX, GPU, EndpointHealth, GPUInfo, HostInfo, Resources, SlurmInfo

if TYPE_CHECKING:
    from biorouter.routing.catalogue import Deployment
    from biorouter.routing.profiles import Profile
    from biorouter.settings import Settings

__all__ = [
    "GPU",
    "EndpointHealth",
    "GPUInfo",
    "HostInfo",
    "Resources",
    "SlurmInfo",
    "adetect",
    "detect",
    "normalise_gpu_name",
]


# -- detection ---------------------------------------------------------------------------------


def normalise_gpu_name(name: str) -> str:
    """The GPU type profiles name: 'Tesla T4' -> 'T4' (see :func:`biorouter.hardware.probes.normalise_gpu_name`)."""
    from biorouter.hardware.probes import normalise_gpu_name as normalise

    return normalise(name)


def _cloud_key_names(deployments: Sequence[Deployment], profiles: Mapping[str, Profile]) -> list[str]:
    names: dict[str, None] = {}
    for d in deployments:
        key = (d.litellm_params.model_extra or {}).get("api_key")
        if d.locality == "cloud" and isinstance(key, str) and key.startswith(ENV_PREFIX):
            names[key.removeprefix(ENV_PREFIX)] = None
    for profile in profiles.values():
        names.update(dict.fromkeys(profile.hardware.cloud_apis))
    return sorted(names)


def _deployments(settings: Settings | None, model_list: Sequence[Mapping[str, Any]] | None) -> list[Deployment]:
    from biorouter.routing.catalogue import load_litellm_config, parse_model_list

    if model_list is None:
        assert settings is not None
        return list(load_litellm_config(settings.litellm_config_path).model_list)
    return parse_model_list(model_list)


async def adetect(
    settings: Settings | None = None,
    *,
    model_list: Sequence[Mapping[str, Any]] | None = None,
    profiles: Mapping[str, Profile] | None = None,
    timeout_s: float = 1.0,
) -> Resources:
    """Probe this machine and return one :class:`Resources` snapshot, within ``timeout_s`` + 0.5 s.

    The local deployments come from ``model_list`` if given, else from the settings' litellm
    config (``settings`` is loaded with :func:`biorouter.settings.load_settings` when needed and
    not given). Cloud keys are those of the cloud deployments plus every ``profiles`` entry's
    ``hardware.cloud_apis`` (profiles are read from ``settings.profiles_path`` when not given and
    settings are known). A broken config file raises :class:`~biorouter.errors.ConfigError`; a
    missing tool, a failing tool or a dead endpoint is a fact in the snapshot.
    """
    import httpx

    from biorouter.hardware.probes import (
        DEADLINE_GRACE_S,
        Answer,
        check_endpoint,
        host_info,
        probe_gpus,
        probe_slurm,
        resolve_env,
        slurm_job,
    )

    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    started = time.perf_counter()
    detected_at = datetime.now(UTC)
    if settings is None and model_list is None:
        from biorouter.settings import load_settings

        settings = load_settings()
    deployments = _deployments(settings, model_list)
    if profiles is None and settings is not None:
        from biorouter.routing.profiles import load_profiles

        profiles = load_profiles(settings.profiles_path)
    cloud_keys = {name: bool(os.environ.get(name)) for name in _cloud_key_names(deployments, profiles or {})}
    host = host_info()

    # One request per distinct URL, even when several deployments share a server.
    endpoints: list[tuple[Deployment, str | None, str | None, str | None]] = []  # deployment, base, url, error
    keys: dict[str, str | None] = {}
    for d in (d for d in deployments if d.locality == "local"):
        base, error = resolve_env(d.litellm_params.api_base)
        if base is None and error is None:
            error = "no api_base in litellm_config"
        url = f"{base.rstrip('/')}/models" if base else None
        if url is not None:
            keys[url] = resolve_env((d.litellm_params.model_extra or {}).get("api_key"))[0]
        endpoints.append((d, base, url, error))

    async with httpx.AsyncClient(trust_env=False, timeout=timeout_s, follow_redirects=False) as client:
        gpu_task = asyncio.create_task(probe_gpus(timeout_s))
        slurm_task = asyncio.create_task(probe_slurm(timeout_s))
        checks = {url: asyncio.create_task(check_endpoint(client, url, key, timeout_s)) for url, key in keys.items()}
        tasks: list[asyncio.Task[Any]] = [gpu_task, slurm_task, *checks.values()]
        remaining = timeout_s + DEADLINE_GRACE_S - (time.perf_counter() - started)
        _, pending = await asyncio.wait(tasks, timeout=max(remaining, 0.05))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    late = f"did not finish within {timeout_s + DEADLINE_GRACE_S:g} s"
    gpu = gpu_task.result() if gpu_task not in pending else GPUInfo(error=f"nvidia-smi {late}")
    if slurm_task in pending:
        job_id, partition = slurm_job()
        slurm = SlurmInfo(in_job=job_id is not None, job_id=job_id, partition=partition, error=f"sinfo {late}")
    else:
        slurm = slurm_task.result()
    health = []
    for d, base, url, error in endpoints:
        answer = Answer(False, None, None, error)
        if url is not None:
            task = checks[url]
            answer = task.result() if task not in pending else Answer(False, None, None, f"health check {late}")
        health.append(
            EndpointHealth(
                group=d.model_name,
                deployment=d.litellm_params.model,
                api_base=base,
                healthy=answer.healthy,
                status=answer.status,
                latency_ms=answer.latency_ms,
                error=answer.error,
            )
        )
    return Resources(
        detected_at=detected_at,
        duration_s=round(time.perf_counter() - started, 3),
        host=host,
        gpu=gpu,
        slurm=slurm,
        cloud_keys=cloud_keys,
        endpoints=tuple(health),
    )


def detect(
    settings: Settings | None = None,
    *,
    model_list: Sequence[Mapping[str, Any]] | None = None,
    profiles: Mapping[str, Profile] | None = None,
    timeout_s: float = 1.0,
) -> Resources:
    """:func:`adetect` on a fresh event loop; from inside a running loop, ``await adetect(...)`` instead.

    Works in any thread that runs no loop (e.g. ``asyncio.to_thread(detect)``). The loop's worker
    threads are not waited for on the way out, so a stuck name lookup cannot stretch detection.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("detect() cannot run inside a running event loop; use 'await adetect(...)' there")
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(adetect(settings, model_list=model_list, profiles=profiles, timeout_s=timeout_s))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()  # shuts the default executor down with wait=False
