"""Decision latency in-process: what biorouter adds before a request leaves for its upstream.

Each request goes through the engine's whole decision (sensitivity scan, classification, budget
view, ``decide()``) one at a time, as a lone client would see it; no upstream is called. Figures
are p50 / p90 / p99 in milliseconds, split into classification and the rest, per request shape:

- ``short``: one chat line (half of the traffic);
- ``context``: a question with a paragraph of context before it;
- ``table``: pasted tabular data (a sample sheet) with a question after it;
- ``code``: 1k-4k tokens of pasted code or logs with the question at the end.

Prompts are built from the project's own utterances (never from the evaluation data), every
one distinct, so the in-memory cache of recent request vectors never answers; a second pass
over repeated prompts shows what that cache is worth. The accuracy guard runs the same
classifier over the external evaluation set, so no speed-up here silently costs accuracy.
Targets (2-core CPU, default encoder): p50 <= 5 ms, p99 <= 15 ms for the whole decision.
Run: ``make bench`` or ``python bench/decision_latency.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime

from common import ROOT, accuracy_line, percentile, summary

from biorouter.classify.utterances import load_utterances
from biorouter.hardware.resources import HostInfo, Resources
from biorouter.serving.engine import BioRouter
from biorouter.settings import load_settings

CODE_LINES = (
    "    reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30 and not r.is_duplicate]\n",
    "2026-11-21 10:42:17 INFO  [bwa_mem] Processed 400000 reads in 31.2 CPU sec, 16.1 real sec\n",
    "    df = df.groupby(['sample', 'condition']).agg(counts=('reads', 'sum')).reset_index()\n",
    "Error in DESeqDataSetFromMatrix(countData = cts, colData = coldata, design = ~ condition)\n",
)
SHAPES = ("short",) * 10 + ("context",) * 4 + ("table",) * 3 + ("code",) * 3


def build_requests(utterances: dict[str, list[str]], count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (shape, text) pairs in the mix above."""
    rng = random.Random(seed)
    pool = [line for lines in utterances.values() for line in lines]
    requests = []
    for index in range(count):
        ask = rng.choice(pool)
        shape = SHAPES[index % len(SHAPES)]
        if shape == "short":
            text = f"{ask} (request {index})"
        elif shape == "context":
            context = f"We sequence 48 samples per run on a NovaSeq; batch {index} came back yesterday."
            text = f"{context} {rng.choice(pool)} {ask}"
        elif shape == "table":
            rows = "".join(
                f"S{row:03d}\tcase\t{rng.randint(10, 99)}M\tlane{row % 4}\n" for row in range(rng.randint(20, 80))
            )
            text = f"sample\tcondition\treads\tlane\n{rows}{ask} (batch {index})"
        else:
            lines = "".join(rng.choice(CODE_LINES) for _ in range(rng.randint(45, 180)))  # ~1k-4k tokens
            text = f"```\n{lines}```\n{ask} (run {index})"
        requests.append((shape, text))
    return requests


async def measure(engine: BioRouter, requests: list[tuple[str, str]]) -> dict[str, dict[str, list[float]]]:
    """Per shape: whole decision, classification, and everything else, in milliseconds."""
    timings: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for shape, text in requests:
        messages = [{"role": "user", "content": text}]
        started = time.perf_counter()
        _, _, _, _, parts = await engine._decide(messages, "auto", None, {}, engine.state)
        total = (time.perf_counter() - started) * 1000
        classify = parts.get("classify", 0.0) * 1000
        for bucket in (shape, "all"):
            timings[bucket]["decision"].append(total)
            timings[bucket]["classify"].append(classify)
            timings[bucket]["rest"].append(total - classify)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", default="development")
    args = parser.parse_args()

    settings = load_settings(ROOT)
    nothing_detected = Resources(detected_at=datetime.now(UTC), duration_s=0.0, host=HostInfo(hostname="bench"))
    engine = BioRouter.from_settings(settings, profile=args.profile, resources=nothing_detected)
    started = time.perf_counter()
    engine.classifier.load()
    load_s = time.perf_counter() - started
    utterances = dict(load_utterances(settings.utterances_path))
    requests = build_requests(utterances, args.requests + 40, args.seed)
    asyncio.run(measure(engine, requests[-40:]))  # warm threads and allocators on prompts not measured
    timings = asyncio.run(measure(engine, requests[: args.requests]))
    repeated = asyncio.run(measure(engine, requests[:100]))  # now answered by the query cache

    classifier = settings.classifier
    encoder = classifier.encoder
    print(
        f"decision latency, in-process: encoder {encoder.kind} ({getattr(encoder, 'runtime', '-')}), "
        f"max_query_tokens={classifier.max_query_tokens}, profile {engine.profile.name}, "
        f"{args.requests} distinct requests, one at a time"
    )
    print(f"classifier load: {load_s:.1f} s")
    header = "".join(f"{title:>26}" for title in ("decision p50 p90 p99 ms", "classify", "rest"))
    print(f"{'requests':<9}{'n':>5}{header}")
    for shape in ("short", "context", "table", "code", "all"):
        parts = timings[shape]
        print(
            f"{shape:<9}{len(parts['decision']):>5}  {summary(parts['decision']):>24}"
            f"  {summary(parts['classify']):>24}  {summary(parts['rest']):>24}"
        )
    whole = timings["all"]["decision"]
    p50, p99 = statistics.median(whole), percentile(whole, 0.99)
    print(
        f"target p50 <= 5 ms: {p50:.2f} ms {'met' if p50 <= 5 else 'MISSED'}; "
        f"p99 <= 15 ms: {p99:.2f} ms {'met' if p99 <= 15 else 'MISSED'}"
    )
    cached = statistics.median(repeated["all"]["decision"])
    print(f"repeated requests (query-cache hits): p50 {cached:.2f} ms, {statistics.median(whole) / cached:.1f}x faster")
    print(accuracy_line(engine.classifier))


if __name__ == "__main__":
    main()
