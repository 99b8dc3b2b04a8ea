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
    from biorouter.classify.classifier import TaskClassifier
    from biorouter.routing.complexity import read_tier_examples
    from biorouter.settings import load_settings

    settings = load_settings()
    classifier = TaskClassifier.from_settings(settings)
    print(
        f"preparing the classifier in {settings.cache_path}: loading the encoder (exported to ONNX the first "
        "time) and embedding the utterances not cached yet; a first run takes half a minute or less on 2 cores ...",
        flush=True,
    )
    started = time.perf_counter()
    classifier.load()
    elapsed = time.perf_counter() - started
    embedder = classifier.embedder
    assert embedder is not None
    documents = embedder.documents
    counts = f"{documents.misses} embedded, {documents.hits} from the cache" if documents is not None else "no cache"
    print(f"encoder {embedder.fingerprint} ready in {elapsed:.1f} s; utterances: {counts}")
    for folder in _tier_example_folders(settings):
        examples = read_tier_examples(folder)
        lines = [line for tier in examples.values() for line in tier]
        if lines:
            print(f"embedding the complexity examples of {folder} ...", flush=True)
            embedder.embed_documents(lines)
            print(f"complexity examples: {len(lines)} lines of {folder}")
    from biorouter.governance import people

    started = time.perf_counter()
    if people.warm():
        print(
            f"sensitivity detector: NER model '{people.MODEL_PACKAGE}' loads in {time.perf_counter() - started:.1f} s"
        )
    else:
        print(f"sensitivity detector: NER model '{people.MODEL_PACKAGE}' cannot load: requests that need it stay local")
    print(f"cache: {settings.cache_path}")
    return 0


def _tier_example_folders(settings: Any) -> list[Any]:
    """The tiered example folders the profiles name (each embedded once, like the utterances)."""
    from biorouter.routing.profiles import load_profiles

    profiles = load_profiles(settings.profiles_path, display_root=settings.home)
    named = {p.complexity.examples for p in profiles.values() if p.complexity.examples is not None}
    return sorted(settings.home / folder for folder in named)
