"""Chaos soak: thousands of requests through the real proxy while stand-in upstreams fail at random.

Starts its own stack (stand-ins for every group of the development profile, a real ``litellm``
proxy with the biorouter hook, exactly as ``make run``) and drives it with
:func:`biorouter.testing.chaos.soak`: a chaos thread gives random stand-ins 500s, 429s, stalls
beyond the request timeout, dropped connections, or stops their process and starts it again,
never taking every group of a route chain at once (the fault model is in the module's docstring).
Meanwhile ``--requests`` chat requests (a mix of tasks, a fifth with a patient or sample
identifier) go through the proxy, ``--concurrency`` at a time.

It proves, and exits 1 unless:
- answered = 100 %: every request got an answer or a clear 4xx/503 (no reset, no timeout);
- success of cloud-allowed requests >= 99.9 % (local-only ones may get a clear 503: kept local);
- governance leaks = 0: the cloud stand-in received no request with an identifier (its canary)
  and no sensitive request was answered by it;
- proxy restarts = 0: the same proxy process serves from start to end.

Run: ``python bench/chaos_soak.py`` (5,000 requests at concurrency 32, several minutes on two
cores) or ``--quick`` (300 at 16, about a minute). Figures taken while other work runs are noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

from biorouter.routing.profiles import load_profile
from biorouter.settings import load_settings
from biorouter.testing.chaos import soak
from biorouter.testing.devstack import DevStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seed of the chaos and of the request mix")
    parser.add_argument("--quick", action="store_true", help="300 requests at concurrency 16")
    args = parser.parse_args(argv)
    total, concurrency = (300, 16) if args.quick else (args.requests, args.concurrency)

    settings = load_settings(ROOT)
    profile = load_profile(ROOT / "profiles" / "development.yaml")
    with tempfile.TemporaryDirectory(prefix="biorouter-chaos-") as folder:
        run_dir = Path(folder)
        stack = DevStack(
            settings.litellm_config_path,
            profile.groups(),
            run_dir=run_dir,
            env={
                "BIOROUTER_HOME": str(ROOT),
                "BIOROUTER_PROFILE": profile.name,
                "BIOROUTER_AUDIT_LOG": str(run_dir / "audit.jsonl"),
            },
        )
        started = time.perf_counter()
        with stack:
            print(f"stack up in {time.perf_counter() - started:.1f} s; soaking {total} requests at c={concurrency}")
            report = soak(stack, profile, total=total, concurrency=concurrency, seed=args.seed, progress=True)
        print("\nchaos soak (development profile, stand-ins on loopback)")
        for line in report.lines():
            print("  " + line)
        problems = report.problems()
        for problem in problems:
            print(f"FAILED: {problem}")
        for sample in report.failed_samples[:5]:
            print(f"a cloud-allowed request failed: {sample}")
        for error in report.chaos_errors[:5]:
            print(f"chaos control error: {error}")
        if not problems:
            print("all bars met: answered 100 %, cloud-allowed success >= 99.9 %, 0 leaks, 0 proxy restarts")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
