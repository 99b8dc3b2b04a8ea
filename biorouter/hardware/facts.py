"""The facts detection records about this machine, as immutable models (no probing here).

Apart from :mod:`~biorouter.hardware.resources` (which runs detection) so that the probes in
:mod:`~biorouter.hardware.probes` can build these facts without importing the module that calls them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ENV_PREFIX", "GPU", "EndpointHealth", "GPUInfo", "HostInfo", "Resources", "SlurmInfo"]

ENV_PREFIX = "os.environ/"  # how litellm_config reads a value from the environment


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class GPU(_Frozen):
    index: int
    name: str = Field(description="as nvidia-smi reports it, e.g. 'Tesla T4', 'NVIDIA H100 80GB HBM3'")
    model: str = Field(description="normalised type profiles name: T4, L4, A100, H100, ... (else the full name)")
    memory_gb: float = Field(ge=0, description="total memory, GiB")


class GPUInfo(_Frozen):
    gpus: tuple[GPU, ...] = ()
    error: str | None = Field(default=None, description="why no GPU list was read (e.g. 'nvidia-smi not found')")

    @property
    def count(self) -> int:
        return len(self.gpus)

    @property
    def models(self) -> tuple[str, ...]:
        """Distinct GPU types, in index order."""
        return tuple(dict.fromkeys(gpu.model for gpu in self.gpus))


class SlurmInfo(_Frozen):
    available: bool = Field(default=False, description="sinfo answered: this machine can reach a SLURM cluster")
    in_job: bool = Field(default=False, description="running inside a SLURM job (SLURM_JOB_ID is set)")
    job_id: str | None = None
    partition: str | None = Field(default=None, description="the current job's partition")
    partitions: tuple[str, ...] = ()
    default_partition: str | None = None
    error: str | None = None


class EndpointHealth(_Frozen):
    """One local deployment's answer to a short health probe."""

    group: str
    deployment: str = Field(description="the deployment's litellm model name")
    api_base: str | None = Field(default=None, description="None when its environment variable is unset")
    healthy: bool = False
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None


class HostInfo(_Frozen):
    hostname: str
    cpu_count: int | None = None
    memory_gb: float | None = None
    platform: str = ""


class Resources(_Frozen):
    detected_at: datetime
    duration_s: float = Field(ge=0, description="how long detection took")
    host: HostInfo
    gpu: GPUInfo = Field(default_factory=GPUInfo)
    slurm: SlurmInfo = Field(default_factory=SlurmInfo)
    cloud_keys: Mapping[str, bool] = Field(default_factory=dict, description="environment variable -> is it set")
    endpoints: tuple[EndpointHealth, ...] = ()

    def healthy_groups(self) -> frozenset[str]:
        """Local groups with at least one deployment that answered its health probe."""
        return frozenset(e.group for e in self.endpoints if e.healthy)

    def key_is_set(self, name: str) -> bool:
        return self.cloud_keys.get(name, False)
