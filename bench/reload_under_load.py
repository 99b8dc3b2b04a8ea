"""Reload under load: profile and utterance edits, half of them invalid, during a run of chat requests.

Issue 8's proof: 20 edits (10 invalid, one of every kind in ``biorouter.testing.loadrun.INVALID``)
during 1,000 requests through a real ``litellm`` proxy with the biorouter hook, each edit followed
by ``POST /biorouter/reload`` or SIGHUP (alternately). Stand-ins play every deployment; the proxy
has its own copy of profiles/ and utterances/ in a temporary home, so the checkout is never edited.

Prints the figures as JSON: failed requests (must be 0), valid edits applied, invalid edits
rejected with their error, answers inconsistent with the generation that decided them (must be
0), throughput and latency while reloading, and each edit's outcome. Exit 1 when any check fails.
Run: ``python bench/reload_under_load.py`` (about a minute; ``--requests 200 --edits 6`` for a quick one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import yaml
from common import ROOT

from biorouter.routing.profiles import load_profile
from biorouter.testing.devstack import standin_config
from biorouter.testing.loadrun import reload_edits, reload_under_load, scenario_proxy
from biorouter.testing.standin import StandInFleet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=12)
    args = parser.parse_args()
    groups = sorted(load_profile(ROOT / "profiles" / "development.yaml").groups())
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as folder:
        run_dir = Path(folder)
        with StandInFleet(groups, log_dir=run_dir / "standins") as fleet:
            base = yaml.safe_load((ROOT / "litellm_config" / "config.yaml").read_text(encoding="utf-8"))
            overlay = run_dir / "standins.yaml"
            overlay.write_text(yaml.safe_dump(standin_config(base, {g: fleet[g].api_base for g in groups})))
            proxy, home = scenario_proxy(run_dir, ROOT, overlay, encoder_api_base=fleet["t4-embeddings"].api_base)
            with proxy:
                report = asyncio.run(
                    reload_under_load(
                        proxy.url,
                        proxy.master_key,
                        proxy.pid,
                        home,
                        total=args.requests,
                        edits=reload_edits(args.edits),
                        concurrency=args.concurrency,
                    )
                )
    summary = report.summary()
    summary["edit_log"] = [
        {
            "edit": e.name,
            "trigger": e.trigger,
            "outcome": e.outcome,
            "generation": e.generation,
            "seconds": round(e.seconds, 3),
            "error": None if e.valid else (e.problems[0] if e.problems else None),
        }
        for e in report.edits
    ]
    print(json.dumps(summary, indent=2))
    ok = (
        summary["failed"] == 0
        and summary["inconsistent_responses"] == 0
        and summary["valid_applied"] == summary["valid"]
        and summary["invalid_rejected_with_error"] == summary["invalid"]
    )
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
