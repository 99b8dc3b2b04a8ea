"""``biorouter prepare``: build the classifier's caches now, so no process pays for them later.

Exports the encoder to ONNX (once per model and precision) and embeds every utterance into
``cache_dir``. The proxy and the Python API would do the same lazily on first use; running it at
install or image-build time keeps the first proxy start as fast as every later one. Running it
again costs a second: only changed utterances are embedded.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prepare", help="export the encoder and embed the utterances into cache_dir", description=__doc__
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from biorouter.classifier import TaskClassifier
    from biorouter.settings import load_settings

    settings = load_settings()
    classifier = TaskClassifier.from_settings(settings)
    started = time.perf_counter()
    classifier.load()
    elapsed = time.perf_counter() - started
    embedder = classifier.embedder
    assert embedder is not None
    documents = embedder.documents
    counts = f"{documents.misses} embedded, {documents.hits} from the cache" if documents is not None else "no cache"
    print(f"encoder {embedder.fingerprint} ready in {elapsed:.1f} s; utterances: {counts}")
    print(f"cache: {settings.cache_path}")
    return 0
