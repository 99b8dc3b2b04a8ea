"""Fake ``nvidia-smi``, ``sinfo`` and ``squeue`` executables, to test hardware detection offline.

:func:`write_fake_tools` writes small ``/bin/sh`` scripts into a folder; put that folder first on
``PATH`` (:func:`fake_path` also drops the folders holding the real tools) and
:func:`biorouter.hardware.resources.detect` runs them as real subprocesses::

    from biorouter.testing.hardware import FakeSlurm, fake_path, write_fake_tools

    tools = write_fake_tools(tmp_path / "bin", "t4x10", slurm=FakeSlurm())
    monkeypatch.setenv("PATH", fake_path(tools))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")          # squeue then names the job's partition
    assert detect(settings).gpu.models == ("T4",)

Scenarios (:data:`SCENARIOS`): ``"t4x10"`` (ten Tesla T4, 15360 MiB each), ``"h100"`` (one NVIDIA
H100 80GB HBM3), ``"l4+t4"`` (one NVIDIA L4 and one Tesla T4) and ``"none"``; or pass your own
:class:`FakeGPU` list. ``nvidia_smi`` chooses how the fake behaves:

* ``"auto"``: ``"answer"`` when the scenario has GPUs, else ``"missing"``;
* ``"answer"``: prints the GPUs the way ``nvidia-smi --query-gpu=index,name,memory.total
  --format=csv,noheader,nounits`` does (always these three columns, whatever is asked; any other
  arguments get the ``nvidia-smi -L`` listing); with no GPU, "No devices were found", exit 6;
* ``"missing"``: no ``nvidia-smi`` at all (the folder's old one is removed);
* ``"no-driver"``: a machine without a working driver: "NVIDIA-SMI has failed because it couldn't
  communicate with the NVIDIA driver ...", exit 9;
* ``"hang"``: sleeps ``hang_s`` seconds (default 30) without answering, to prove the timeout.

``slurm=FakeSlurm(...)`` writes ``sinfo`` (``-o %P`` lists the partitions, the default marked
``*``) and ``squeue`` (``-o %P`` prints ``job_partition``); ``FakeSlurm(mode="unreachable")`` fails
like a login node whose controller is down, ``mode="hang"`` never answers. Without ``slurm`` the
folder has neither tool. POSIX only (the fakes are shell scripts).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["SCENARIOS", "TOOLS", "FakeGPU", "FakeSlurm", "NvidiaSmiMode", "fake_path", "write_fake_tools"]

TOOLS = ("nvidia-smi", "sinfo", "squeue")
NvidiaSmiMode = Literal["auto", "answer", "missing", "no-driver", "hang"]


@dataclass(frozen=True)
class FakeGPU:
    name: str  # as nvidia-smi reports it
    memory_mib: int


T4 = FakeGPU("Tesla T4", 15360)
L4 = FakeGPU("NVIDIA L4", 23034)
H100 = FakeGPU("NVIDIA H100 80GB HBM3", 81559)

SCENARIOS: Mapping[str, tuple[FakeGPU, ...]] = {
    "t4x10": (T4,) * 10,
    "h100": (H100,),
    "l4+t4": (L4, T4),
    "none": (),
}


@dataclass(frozen=True)
class FakeSlurm:
    partitions: tuple[str, ...] = ("gpu", "cpu", "long")
    default: str | None = "gpu"
    job_partition: str = "gpu"  # what squeue reports for any job id
    mode: Literal["answer", "unreachable", "hang"] = "answer"


_NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
_UNREACHABLE = "slurm_load_partitions: Unable to contact slurm controller (connect failure)"


def _script(body: str) -> str:
    return f"#!/bin/sh\n# fake written by biorouter.testing.hardware\n{body}\n"


def _lines(lines: Iterable[str]) -> str:
    return " ".join(shlex.quote(line) for line in lines)


def _printing(pattern: str, matched: Iterable[str], otherwise: Iterable[str]) -> str:
    """A script printing ``matched`` lines when its arguments match the glob ``pattern``, else ``otherwise``."""
    body = f"printf '%s\\n' {_lines(matched)} ;;\n  *) printf '%s\\n' {_lines(otherwise)} ;;"
    return _script(f'case "$*" in\n  {pattern}) {body}\nesac')


def _hang(seconds: float) -> str:
    # exec: the sleeping process is the one the caller started (and kills); no PATH lookup needed
    return f"exec {shlex.quote(sys.executable)} -c 'import time; time.sleep({seconds:g})'"


def _nvidia_smi(gpus: Sequence[FakeGPU], mode: NvidiaSmiMode, hang_s: float) -> str | None:
    if mode == "auto":
        mode = "answer" if gpus else "missing"
    if mode == "missing":
        return None
    if mode == "hang":
        return _script(_hang(hang_s))
    if mode == "no-driver":
        return _script(f"printf '%s\\n\\n' {shlex.quote(_NO_DRIVER)}\nexit 9")
    if not gpus:
        return _script("echo 'No devices were found'\nexit 6")
    query = (f"{i}, {gpu.name}, {gpu.memory_mib}" for i, gpu in enumerate(gpus))
    listing = (f"GPU {i}: {gpu.name} (UUID: GPU-{i:08d}-0000-0000-0000-000000000000)" for i, gpu in enumerate(gpus))
    return _printing("*--query-gpu*", query, listing)


def _slurm_tools(slurm: FakeSlurm, hang_s: float) -> dict[str, str]:
    if slurm.mode == "hang":
        return {"sinfo": _script(_hang(hang_s)), "squeue": _script(_hang(hang_s))}
    if slurm.mode == "unreachable":
        failing = _script(f"echo {shlex.quote(_UNREACHABLE)} >&2\nexit 1")
        return {"sinfo": failing, "squeue": failing}
    marked = [f"{p}*" if p == slurm.default else p for p in slurm.partitions]
    table = [
        "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST",
        *(f"{p:<9} up 2-00:00:00      4    mix node-[1-4]" for p in marked),
    ]
    job = ["JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"]
    job.append(f" 4242 {slurm.job_partition:>9}     bash    alice  R       1:02      1 node-1")
    return {"sinfo": _printing("*%P*", marked, table), "squeue": _printing("*%P*", [slurm.job_partition], job)}


def write_fake_tools(
    folder: Path,
    scenario: str | Sequence[FakeGPU] = "none",
    *,
    nvidia_smi: NvidiaSmiMode = "auto",
    slurm: FakeSlurm | None = None,
    hang_s: float = 30,
) -> Path:
    """Write the fakes for ``scenario`` into ``folder`` (created if needed) and return it.

    Tools the scenario does not include are removed from ``folder``, so one folder can be reused.
    """
    gpus = SCENARIOS[scenario] if isinstance(scenario, str) else tuple(scenario)
    folder.mkdir(parents=True, exist_ok=True)
    scripts: dict[str, str | None] = {
        "nvidia-smi": _nvidia_smi(gpus, nvidia_smi, hang_s),
        "sinfo": None,
        "squeue": None,
    }
    if slurm is not None:
        scripts.update(_slurm_tools(slurm, hang_s))
    for tool, text in scripts.items():
        path = folder / tool
        path.unlink(missing_ok=True)
        if text is not None:
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755)
    return folder


def fake_path(folder: Path, path: str | None = None) -> str:
    """A ``PATH`` with ``folder`` first and without the folders that hold a real faked tool.

    ``path`` defaults to the current ``PATH``; a real ``nvidia-smi`` or ``sinfo`` elsewhere on it
    would otherwise answer for a fake that a scenario leaves out.
    """
    entries = (path if path is not None else os.environ.get("PATH", os.defpath)).split(os.pathsep)
    kept = [e for e in entries if e and not any(os.path.exists(os.path.join(e, tool)) for tool in TOOLS)]
    return os.pathsep.join([str(folder), *kept])
