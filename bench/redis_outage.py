"""Redis killed and restarted under load: the ledger (and LiteLLM's router state) survive it.

Issue 8's proof: 1,000 chat requests through a real ``litellm`` proxy whose ledger is a real
``redis-server`` (``REDIS_URL``) that LiteLLM's router also uses (``router_settings.redis_host``).
Every other request takes a priced cloud route. After a third of the run Redis is killed
(SIGKILL), after two thirds it is started again on the same port with its append-only file.

Prints the figures as JSON: failed requests (must be 0), decisions taken while the ledger was
degraded (``x-biorouter-degraded: ledger:unavailable``), cloud requests served while degraded
(0 under the default ``ledger_unavailable: closed``), and how long after the restart decisions
were whole again. Exit 1 when a request failed or the ledger did not recover.
Run: ``python bench/redis_outage.py`` (needs redis-server: ``make redis``).
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
from biorouter.testing.loadrun import redis_outage, scenario_proxy
from biorouter.testing.redis import RedisServer
from biorouter.testing.standin import StandInFleet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=12)
    args = parser.parse_args()
    if not RedisServer.available():
        print("redis-server is not installed (make redis)", file=sys.stderr)
        return 2
    groups = sorted(load_profile(ROOT / "profiles" / "development.yaml").groups())
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        run_dir = Path(folder)
        redis = RedisServer(data_dir=run_dir / "redis", log_path=run_dir / "redis.log")
        with redis, StandInFleet(groups, log_dir=run_dir / "standins") as fleet:
            base = yaml.safe_load((ROOT / "litellm_config" / "config.yaml").read_text(encoding="utf-8"))
            overlay = run_dir / "standins.yaml"
            overlay.write_text(yaml.safe_dump(standin_config(base, {g: fleet[g].api_base for g in groups})))
            proxy, _ = scenario_proxy(
                run_dir,
                ROOT,
                overlay,
                encoder_api_base=fleet["t4-embeddings"].api_base,
                redis_url=redis.url,
                litellm_redis_port=redis.port,
            )
            with proxy:
                report = asyncio.run(
                    redis_outage(
                        proxy.url,
                        proxy.master_key,
                        kill=redis.kill,
                        restart=redis.start,
                        total=args.requests,
                        concurrency=args.concurrency,
                    )
                )
                log = (run_dir / "proxy.log").read_text(encoding="utf-8", errors="replace")
    summary = report.summary()
    summary["ledger_log"] = [line[:200] for line in log.splitlines() if "biorouter ledger" in line]
    summary["litellm_redis_log"] = sorted(
        {line.split(" - ", 2)[-1][:160] for line in log.splitlines() if "LiteLLM" in line and "edis" in line}
    )[:8]
    print(json.dumps(summary, indent=2))
    ok = summary["failed"] == 0 and summary["recovered_after_restart_s"] is not None
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
