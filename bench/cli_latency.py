"""How long the ``biorouter`` commands a newcomer runs first take, wall clock, written to ``docs/figures.json``.

``biorouter route TEXT`` is a fresh process each time: Python start-up, imports (LiteLLM and
semantic-router are most of it), the encoder and the cached utterance vectors, one decision. The
median of ``--repeats`` runs is recorded; say how loaded the machine was when you quote it.

    .venv/bin/python bench/cli_latency.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import ROOT
from figures import Figure, record

PROMPT = "what does the KRAS G12D mutation do in pancreatic cancer?"


def timed(*args: str) -> float:
    env = {**os.environ, "BIOROUTER_HOME": str(ROOT)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "biorouter", *args], env=env, capture_output=True, check=True, timeout=300)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    timed("route", PROMPT)  # warm the OS file cache and the utterance cache once
    runs = [timed("route", PROMPT) for _ in range(args.repeats)]
    load = os.getloadavg()[0]
    median = statistics.median(runs)
    print("biorouter route: " + ", ".join(f"{r:.1f}" for r in runs) + f" s (median {median:.1f} s, load {load:.1f})")
    data = (
        f"one chat-line request, warm cache, median of {args.repeats} runs, "
        f"load average {load:.1f} on {os.cpu_count()} cores"
    )
    record(
        {"cli.route.seconds": Figure(text=f"{median:.0f} s", value=median, data=data, source="bench/cli_latency.py")}
    )


if __name__ == "__main__":
    main()
