"""The probes behind :func:`biorouter.hardware.resources.adetect`: one fact each, and never an exception.

Each probe turns every way a tool or a server can fail — not installed, not executable, a
non-zero exit, no answer within the timeout, a refused connection — into a sentence in the
snapshot. Tools run in their own session so a hung ``nvidia-smi`` (and any child it started) is
killed when its time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from biorouter.hardware.facts import ENV_PREFIX, GPU, GPUInfo, HostInfo, SlurmInfo

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEADLINE_GRACE_S",
    "Answer",
    "check_endpoint",
    "host_info",
    "normalise_gpu_name",
    "probe_gpus",
    "probe_slurm",
    "resolve_env",
    "slurm_job",
]

_NVIDIA_SMI = ("nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits")
DEADLINE_GRACE_S = 0.5  # beyond timeout_s: killing and reaping a hung tool, building the snapshot
_REAP_S = 0.2
_MAX_MESSAGE = 300

# Families profiles name; matched on the first word of the name once "NVIDIA"/"Tesla" is dropped.
_GPU_FAMILIES = re.compile(
    r"(GH200|GB200|B200|B100|H200|H100|H800|A100|A800|A10G|A10|A16|A30|A40|L40S|L40|L4|T4|V100|P100|P40|P4|K80)"
    r"(?![0-9A-Z])",
    re.IGNORECASE,
)
_VENDOR_WORDS = re.compile(r"^(?:NVIDIA\s+|Tesla\s+|GeForce\s+|Quadro\s+)+", re.IGNORECASE)


def normalise_gpu_name(name: str) -> str:
    """The GPU type profiles name: 'Tesla T4' -> 'T4', 'NVIDIA H100 80GB HBM3' -> 'H100'.

    Datacenter families (T4, L4, A10G, A100, H100, ...) lose their vendor words and variant
    suffixes; RTX cards keep their model ('NVIDIA GeForce RTX 4090' -> 'RTX 4090'); any other
    name is kept as nvidia-smi reports it.
    """
    bare = _VENDOR_WORDS.sub("", name.strip())
    family = _GPU_FAMILIES.match(bare)
    if family is not None:
        return family.group(1).upper()
    if bare.upper().startswith("RTX"):
        return bare
    return name.strip()


class _Output(NamedTuple):
    text: str | None  # stdout when the tool exited 0
    error: str | None  # otherwise: why not


def _first_line(*streams: bytes) -> str:
    for stream in streams:
        for line in stream.decode("utf-8", "replace").splitlines():
            if line.strip():
                return line.strip()[:_MAX_MESSAGE]
    return ""


def _kill(proc: asyncio.subprocess.Process) -> None:
    # The tool runs in its own session: kill its children too (a shell script's `sleep` would
    # otherwise keep the pipes open).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _run(argv: Sequence[str], timeout_s: float) -> _Output:
    """Run a tool with a timeout; every way it can fail becomes a sentence, never an exception."""
    tool = argv[0]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return _Output(None, f"{tool} not found")
    except PermissionError:
        return _Output(None, f"{tool} is not executable")
    except OSError as e:
        return _Output(None, f"cannot run {tool}: {e.strerror or e}")
    try:
        async with asyncio.timeout(timeout_s):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        _kill(proc)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REAP_S):
                await proc.wait()
        return _Output(None, f"{tool} did not answer within {timeout_s:g} s (killed)")
    except asyncio.CancelledError:
        _kill(proc)
        raise
    if proc.returncode != 0:
        detail = _first_line(stdout, stderr)
        return _Output(None, f"{tool} failed (exit {proc.returncode})" + (f": {detail}" if detail else ""))
    return _Output(stdout.decode("utf-8", "replace"), None)


def _parse_gpus(text: str) -> GPUInfo:
    gpus: list[GPU] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 3 or not fields[0].isdigit():
            return GPUInfo(gpus=tuple(gpus), error=f"unexpected nvidia-smi line: {line.strip()[:_MAX_MESSAGE]!r}")
        name = ", ".join(fields[1:-1])
        try:
            memory_gb = round(float(fields[-1]) / 1024, 2)  # MiB -> GiB
        except ValueError:
            memory_gb = 0.0  # "[N/A]": unknown, so it meets no memory need
        gpus.append(GPU(index=int(fields[0]), name=name, model=normalise_gpu_name(name), memory_gb=memory_gb))
    return GPUInfo(gpus=tuple(gpus))


async def probe_gpus(timeout_s: float) -> GPUInfo:
    out = await _run(_NVIDIA_SMI, timeout_s)
    return _parse_gpus(out.text) if out.text is not None else GPUInfo(error=out.error)


def slurm_job() -> tuple[str | None, str | None]:
    """The job id and partition SLURM exported to this process, if any."""
    return os.environ.get("SLURM_JOB_ID") or None, os.environ.get("SLURM_JOB_PARTITION") or None


async def probe_slurm(timeout_s: float) -> SlurmInfo:
    job_id, partition = slurm_job()
    probes = [_run(("sinfo", "-h", "-o", "%P"), timeout_s)]
    if job_id is not None and partition is None:
        probes.append(_run(("squeue", "-h", "-j", job_id, "-o", "%P"), timeout_s))
    sinfo, *squeue = await asyncio.gather(*probes)
    errors = [out.error for out in (sinfo, *squeue) if out.error]
    names: dict[str, None] = {}
    default = None
    for line in (sinfo.text or "").split():
        name = line.rstrip("*")
        if name != line and default is None:
            default = name
        names[name] = None
    if squeue and squeue[0].text:
        partition = squeue[0].text.split()[0] if squeue[0].text.split() else None
    return SlurmInfo(
        available=sinfo.text is not None,
        in_job=job_id is not None,
        job_id=job_id,
        partition=partition,
        partitions=tuple(names),
        default_partition=default,
        error="; ".join(errors) or None,
    )


def resolve_env(value: object) -> tuple[str | None, str | None]:
    """``(value, error)`` for a litellm_params value; ``os.environ/NAME`` is read from the environment."""
    if not isinstance(value, str) or not value:
        return None, None
    if value.startswith(ENV_PREFIX):
        name = value.removeprefix(ENV_PREFIX)
        found = os.environ.get(name)
        return (found, None) if found else (None, f"{name} is not set")
    return value, None


def _describe_http_error(error: BaseException, timeout_s: float) -> str:
    import httpx

    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s"
    if isinstance(error, httpx.RemoteProtocolError):
        return "connection closed without a response"
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return (str(error) or type(error).__name__)[:_MAX_MESSAGE]


class Answer(NamedTuple):
    healthy: bool
    status: int | None
    latency_ms: float | None
    error: str | None


async def check_endpoint(client: httpx.AsyncClient, url: str, key: str | None, timeout_s: float) -> Answer:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            resp = await client.get(url, headers=headers)
    except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, OSError) as e:
        return Answer(False, None, None, _describe_http_error(e, timeout_s))
    latency_ms = round((time.perf_counter() - start) * 1000, 1)
    ok = resp.status_code == 200
    return Answer(ok, resp.status_code, latency_ms, None if ok else f"HTTP {resp.status_code}")


def host_info() -> HostInfo:
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024**2, 2)  # kB -> GiB
                break
    return HostInfo(
        hostname=socket.gethostname(), cpu_count=os.cpu_count(), memory_gb=memory_gb, platform=platform.platform()
    )
