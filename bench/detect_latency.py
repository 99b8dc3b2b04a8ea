"""How long ``biorouter.hardware.resources.detect()`` takes when nothing answers.

The shipped litellm_config's local endpoints are all pointed at dead servers, in two ways:
refused (a port nobody listens on: fails at once) and silent (a socket that accepts connections
but never answers: each check waits for its timeout); ``nvidia-smi`` and ``sinfo``/``squeue`` are
fakes that hang (biorouter.testing.hardware). A healthy-path baseline (nothing configured, no
tools) is measured too. Prints the median and the worst of 5 runs per case; gates nothing (the
promise is < 2 s with the default 1 s timeout). Run: ``python bench/detect_latency.py``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from biorouter.hardware.resources import detect
from biorouter.routing.catalogue import load_litellm_config
from biorouter.routing.profiles import load_profiles
from biorouter.settings import load_settings
from biorouter.testing.hardware import FakeSlurm, fake_path, write_fake_tools
from biorouter.testing.standin import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1.0, help="detect(timeout_s=...)")
    args = parser.parse_args()

    settings = load_settings(ROOT)
    profiles = load_profiles(settings.profiles_path)
    config = load_litellm_config(settings.litellm_config_path)
    base_vars = sorted(
        str(d.litellm_params.api_base).removeprefix("os.environ/")
        for d in config.model_list
        if d.locality == "local" and str(d.litellm_params.api_base).startswith("os.environ/")
    )
    for name in list(os.environ):
        if name.startswith(("VLLM_", "SLURM_")):
            del os.environ[name]

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)  # accepts (the kernel completes the handshake), never answers
        silent_base = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        hanging = write_fake_tools(Path(tmp) / "hang", "t4x10", nvidia_smi="hang", slurm=FakeSlurm(mode="hang"))
        nothing = write_fake_tools(Path(tmp) / "none", "none")
        cases = {
            "baseline: nothing configured, no tools": {"PATH": fake_path(nothing)},
            "refused endpoints, no tools": {
                "PATH": fake_path(nothing),
                **{name: f"http://127.0.0.1:{free_port()}/v1" for name in base_vars},
            },
            "refused endpoints + hanging nvidia-smi/sinfo/squeue": {
                "PATH": fake_path(hanging),
                "SLURM_JOB_ID": "1",
                **{name: f"http://127.0.0.1:{free_port()}/v1" for name in base_vars},
            },
            "silent endpoints (timeouts) + hanging nvidia-smi/sinfo/squeue": {
                "PATH": fake_path(hanging),
                "SLURM_JOB_ID": "1",
                **dict.fromkeys(base_vars, silent_base),
            },
        }
        print(f"{len(base_vars)} local endpoints, timeout_s={args.timeout:g}, {args.repeats} runs per case")
        print(f"{'case':<64} {'median':>8} {'worst':>8}  (wall seconds)")
        for label, env in cases.items():
            walls = []
            with environment(env):
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    resources = detect(settings, profiles=profiles, timeout_s=args.timeout)
                    walls.append(time.perf_counter() - start)
            print(f"{label:<64} {statistics.median(walls):>8.3f} {max(walls):>8.3f}")
            errors = sorted({e.error or "healthy" for e in resources.endpoints})
            endpoints = errors[0] if len(errors) == 1 else f"{len(errors)} kinds of error, e.g. {errors[0]}"
            print(f"    gpu: {resources.gpu.error}; slurm: {resources.slurm.error}; endpoints: {endpoints}")


if __name__ == "__main__":
    main()
