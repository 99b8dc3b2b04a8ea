"""Classifier latency on this machine: median and p99 per request, over varied request sizes.

Prints figures; gates nothing (absolute times depend on the machine). Requests are built from
the project's own utterances, padded into realistic shapes: short chat lines, medium requests
with context, and long pasted code/logs with the question at the end (the encoder reads the
last ``max_query_chars`` characters). Run: ``make bench`` or ``python bench/classifier_latency.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from biorouter import offline

offline.apply()

from biorouter.classifier import TaskClassifier  # noqa: E402
from biorouter.settings import load_settings  # noqa: E402
from biorouter.utterances import load_utterances  # noqa: E402

CODE_LINE = "    reads = [r for r in pysam.AlignmentFile(path) if r.mapping_quality >= 30 and not r.is_duplicate]\n"


def build_queries(utterances: dict[str, list[str]], count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pool = [line for lines in utterances.values() for line in lines]
    queries = []
    for index in range(count):
        base = rng.choice(pool)
        shape = ("short", "medium", "long")[index % 3]
        if shape == "short":
            text = base
        elif shape == "medium":
            text = f"Context: we sequence 48 samples per run on a NovaSeq. {rng.choice(pool)} Anyway: {base}"
        else:
            text = "```python\n" + CODE_LINE * rng.randint(40, 160) + "```\n" + base  # ~1k-4k tokens
        queries.append((shape, text))
    return queries


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(classifier: TaskClassifier, queries: list[tuple[str, str]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"short": [], "medium": [], "long": [], "all": []}
    for shape, text in queries:
        start = time.perf_counter()
        await classifier.aclassify(text)
        elapsed = (time.perf_counter() - start) * 1000
        timings[shape].append(elapsed)
        timings["all"].append(elapsed)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = load_settings()
    utterances = dict(load_utterances(settings.utterances_path))
    classifier = TaskClassifier.from_settings(settings)
    start = time.perf_counter()
    classifier.load()
    load_s = time.perf_counter() - start
    queries = build_queries(utterances, args.queries, args.seed)
    asyncio.run(measure(classifier, queries[:10]))  # warm caches and threads
    timings = asyncio.run(measure(classifier, queries))

    total = sum(len(v) for v in utterances.values())
    print(
        f"classifier: {settings.classifier.encoder.kind}, top_k={settings.classifier.top_k}, "
        f"aggregation={settings.classifier.aggregation}, {total} utterances"
    )
    print(f"load (encoder + index of utterances): {load_s:.1f} s")
    print(f"{'requests':<10}{'n':>6}{'median ms':>12}{'p90 ms':>10}{'p99 ms':>10}")
    for shape in ("short", "medium", "long", "all"):
        values = timings[shape]
        print(
            f"{shape:<10}{len(values):>6}{statistics.median(values):>12.1f}"
            f"{percentile(values, 0.9):>10.1f}{percentile(values, 0.99):>10.1f}"
        )


if __name__ == "__main__":
    main()
