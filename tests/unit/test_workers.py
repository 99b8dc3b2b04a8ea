"""What several proxy workers share on disk: the control file, the tally files, the audit log (concurrent writers)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from biorouter.errors import ConfigError
from biorouter.serving.audit import AuditLog, AuditRecord, read_records
from biorouter.serving.session import Session
from biorouter.settings import Settings
from biorouter.workers.control import ControlFile
from biorouter.workers.launch import num_workers_in
from biorouter.workers.tally import WorkerTally, combine, read_tallies, write_tally
from biorouter.workers.topology import require_shared_ledger


def test_events_get_increasing_numbers_and_a_reader_sees_each_change_once(tmp_path: Path) -> None:
    writer, reader = ControlFile(tmp_path), ControlFile(tmp_path)
    assert reader.changed() is None  # nothing published yet
    first = writer.publish("reload", profile="dev", generation=2, reason="edit", by="admin", origin_pid=11)
    seen = reader.changed()
    assert seen is not None
    assert [e.seq for e in seen.events] == [1]
    assert reader.changed() is None  # unchanged file: no second read
    second = writer.publish("switch", profile="t4_hybrid", generation=3, reason="gpu back", by="admin", origin_pid=12)
    seen = reader.changed()
    assert seen is not None
    assert seen.last == second
    assert (first.seq, second.seq) == (1, 2)


def _publish_many(folder: str, count: int) -> None:
    control = ControlFile(Path(folder))
    for _ in range(count):
        control.publish("reload", profile="dev", generation=1, reason="race", by="test", origin_pid=1)


def test_concurrent_publishers_never_reuse_a_sequence_number(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_publish_many, args=(str(tmp_path), 10)) for _ in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    assert ControlFile(tmp_path).read().seq == 30


def _tally(pid: int, session: Session) -> WorkerTally:
    return WorkerTally(pid=pid, generation=1, profile="dev", updated_at=datetime.now(UTC), summary=session.summary())


def test_the_summed_session_adds_every_workers_counters_and_lists_a_switch_once(tmp_path: Path) -> None:
    at = datetime.now(UTC) - timedelta(seconds=5)
    one, two = Session("dev"), Session("dev")
    one.record(task="code_generation", group="t4-coder", ok=True, cost_usd=0.25)
    one.record(task="biomedical", group="t4-bio", ok=False, refused=True)
    two.record(task="code_generation", group="t4-coder", ok=True, cost_usd=0.5)
    for session in (one, two):
        session.switch("t4_hybrid", reason="gpu back", by="admin", at=at)
    write_tally(tmp_path, _tally(101, one))
    write_tally(tmp_path, _tally(102, two))
    summed = combine(read_tallies(tmp_path), two.summary())
    assert summed.totals.requests == 3
    assert summed.totals.refused == 1
    assert summed.totals.cost_usd == pytest.approx(0.75)
    assert summed.by_group["t4-coder"].requests == 2
    assert summed.by_task["biomedical"].errors == 1
    assert len(summed.switches) == 1
    assert summed.profile == "t4_hybrid"


def test_a_session_counts_its_changes_so_a_worker_knows_when_to_rewrite_its_tally() -> None:
    session = Session("dev")
    before = session.version
    session.record(task=None, group=None, ok=True)
    session.switch("other", reason="r", by="b")
    assert session.version == before + 2


def test_several_workers_without_a_shared_ledger_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    require_shared_ledger(Settings(), 1)  # one worker: its own ledger is the proxy's
    with pytest.raises(ConfigError, match=r"ledger -> redis_url: 4 proxy workers"):
        require_shared_ledger(Settings(), 4)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    require_shared_ledger(Settings(), 4)


def test_the_launcher_reads_the_worker_count_as_litellm_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUM_WORKERS", raising=False)
    assert num_workers_in(["--config", "c.yaml"]) == 1
    assert num_workers_in(["--num_workers", "3"]) == 3
    assert num_workers_in(["--num_workers=2"]) == 2
    monkeypatch.setenv("NUM_WORKERS", "4")
    assert num_workers_in([]) == 4


def _write_records(path: str, writer: int, count: int) -> None:
    log = AuditLog(Path(path))
    for number in range(count):
        record = AuditRecord(
            time=datetime.now(UTC),
            request_id=f"w{writer}-{number}",
            profile="dev",
            task="biomedical",
            rules=("content:sample_id",) * 40,  # long lines: several kilobytes each
            outcome="refused",
            error="x" * 400,
        )
        log.write(record)


def test_concurrent_writers_leave_one_valid_json_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_records, args=(str(path), n, 150)) for n in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    lines = path.read_text().splitlines()
    assert len(lines) == 600
    assert all(json.loads(line)["profile"] == "dev" for line in lines)
    ids = {record.request_id for record in read_records(path)}
    assert len(ids) == 600


def test_biorouter_serve_with_two_workers_and_no_shared_ledger_refuses_naming_the_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "biorouter", "serve", "--workers", "2", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert "2 proxy workers (--workers / --num_workers) need a shared spend ledger" in result.stderr
    assert "ledger.redis_url" in result.stderr


_MULTIPROCESS_METRICS = """
import json, sys
from prometheus_client import Counter
from biorouter import metrics
Counter("litellm_requests", "LiteLLM's own, in the global registry").inc()  # must not leak into biorouter's endpoint
metrics.record_reload("ok", 3)
metrics.record_reload("ok", 4)
body, _ = metrics.exposition()
print(json.dumps(body.decode()))
"""


def test_with_several_workers_the_metrics_endpoint_sums_every_workers_files_and_serves_only_biorouters(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two "workers": separate processes writing to the same folder
        result = subprocess.run(
            [sys.executable, "-c", _MULTIPROCESS_METRICS], capture_output=True, text=True, timeout=120, env=env
        )
        assert result.returncode == 0, result.stderr
    text = json.loads(result.stdout.strip().splitlines()[-1])
    assert 'biorouter_reloads_total{outcome="ok"} 4.0' in text  # 2 reloads in each of the two processes
    assert "biorouter_config_generation 4.0" in text  # a gauge: the highest any worker reports
    assert "litellm_requests" not in text
