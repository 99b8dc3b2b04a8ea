"""The audit trail: records survive the file, damage is skipped, and ``biorouter audit`` reports truthfully."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from biorouter.cli.main import main
from biorouter.routing.decision import Decision
from biorouter.serving.audit import AuditLog, AuditRecord, parse_since, read_records, summarise

MRN_RULE = "content:medical_record_number"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def local_only_decision(profile: str = "t4_hybrid", group: str = "local-biomed", task: str = "biomedical") -> Decision:
    return Decision(
        profile=profile,
        mode="routed",
        group=group,
        local_only=True,
        local_only_rules=(MRN_RULE,),
        local_only_reason="the text contains a medical record number",
        task=task,
    )


def served(
    request_id: str = "req-1", *, at: datetime = NOW, group: str = "local-biomed", locality: str = "local", **kw: str
) -> AuditRecord:
    record = AuditRecord.from_decision(
        local_only_decision(**kw),
        request_id=request_id,
        outcome="served",
        group=group,
        deployment_id=f"{group}-0",
        api_base=f"http://{group}:8000/v1",
        locality=locality,  # type: ignore[arg-type]
    )
    return record.model_copy(update={"time": at})


def refused(
    request_id: str = "req-2", *, at: datetime = NOW, error: str = "no local deployment could serve it"
) -> AuditRecord:
    record = AuditRecord.from_decision(local_only_decision(), request_id=request_id, outcome="refused", error=error)
    return record.model_copy(update={"time": at})


def write_log(path: Path, *records: AuditRecord) -> Path:
    log = AuditLog(path)
    for record in records:
        log.write(record)
    return path


# --- the file ---------------------------------------------------------------------------------


def test_records_round_trip_through_the_log_one_json_line_each(tmp_path: Path) -> None:
    path = write_log(tmp_path / "logs" / "audit.jsonl", served("a"), refused("b"))

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["request_id"] for line in lines] == ["a", "b"]
    assert list(read_records(path)) == [served("a"), refused("b")]


def test_a_second_log_on_the_same_file_appends_rather_than_overwrites(tmp_path: Path) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("first"))
    write_log(path, served("second"))

    assert [r.request_id for r in read_records(path)] == ["first", "second"]


def test_a_record_keeps_rule_names_and_a_short_hash_never_the_text() -> None:
    decision = local_only_decision().model_copy(update={"text_sha256": "ab" * 32})
    record = AuditRecord.from_decision(decision, request_id="r", outcome="refused", error="x" * 2000)

    assert record.rules == (MRN_RULE,)
    assert record.text_sha256 == "ab" * 8
    assert record.error is not None
    assert len(record.error) == 500
    assert record.time.tzinfo is not None


def test_a_damaged_line_is_skipped_and_reported_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, served("before"))
    with path.open("a", encoding="utf-8") as f:
        f.write('{"time": "2026-11-21T12:00:00Z", "request_id": "trunc\n')  # a line cut short
        f.write('{"not": "an audit record"}\n')
        f.write("\n")
    write_log(path, served("after"))

    with caplog.at_level(logging.WARNING, logger="biorouter.audit"):
        records = list(read_records(path))

    assert [r.request_id for r in records] == ["before", "after"]
    warnings = [m for m in caplog.messages if "not an audit record" in m]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{path}:2: not an audit record (")
    assert warnings[1].startswith(f"{path}:3: not an audit record (")


def test_a_time_written_without_a_zone_is_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    line = served("naive").model_dump(mode="json") | {"time": "2026-11-21T10:00:00"}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")

    (record,) = read_records(path, since=datetime(2026, 11, 21, 9, 0))  # a naive since is UTC too

    assert record.time == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_concurrent_writes_from_many_threads_produce_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    threads, per_thread = 8, 50
    long_error = "no local deployment could serve it: " + "x" * 460  # long lines make interleaving visible
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        log = AuditLog(path)  # one log per thread, as separate workers have: no shared lock
        start.wait()
        for i in range(per_thread):
            log.write(refused(f"t{n}-{i}", error=long_error))

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == threads * per_thread
    ids = [AuditRecord.model_validate_json(line).request_id for line in lines]
    assert sorted(ids) == sorted(f"t{n}-{i}" for n in range(threads) for i in range(per_thread))


# --- since ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T10:00", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("2026-11-20T10:00Z", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("2026-11-20T10:00+02:00", datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
        (" 7d ", NOW - timedelta(days=7)),
    ],
)
def test_since_accepts_an_age_or_an_iso_date_or_time(value: str, expected: datetime) -> None:
    assert parse_since(value, now=NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "7", "7 days", "7y", "-3d", "2026-13-01", "", "99999999999w"])
def test_since_rejects_anything_else_naming_the_value_and_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time; expected an age .*30m, 24h, 7d, 2w.* ISO date") as e:
        parse_since(value, now=NOW)
    assert repr(value) in str(e.value)


def test_read_records_since_a_relative_age_keeps_only_newer_records(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "audit.jsonl",
        served("old", at=NOW - timedelta(days=3)),
        served("edge", at=NOW - timedelta(hours=24)),
        refused("new", at=NOW - timedelta(minutes=5)),
    )

    assert [r.request_id for r in read_records(path, since=parse_since("24h", now=NOW))] == ["edge", "new"]
    assert [r.request_id for r in read_records(path, since=parse_since("30m", now=NOW))] == ["new"]


def test_read_records_since_an_absolute_time_compares_across_zones(tmp_path: Path) -> None:
    path = write_log(
        tmp_path / "audit.jsonl",
        served("before", at=datetime(2026, 11, 21, 7, 59, tzinfo=UTC)),
        served("after", at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    )

    assert [r.request_id for r in read_records(path, since=parse_since("2026-11-21T10:00+02:00"))] == ["after"]
    assert [r.request_id for r in read_records(path, since=parse_since("2026-11-21"))] == ["before", "after"]


# --- summary ----------------------------------------------------------------------------------


def test_summary_counts_outcomes_rules_tasks_groups_profiles_and_refusals() -> None:
    records = [
        served("a", at=NOW - timedelta(hours=2)),
        served("b", group="local-general", task="general", profile="h100_local"),
        served("c", group="cloud-gpt", locality="cloud"),
        refused("d", at=NOW + timedelta(hours=1)),
        refused("e"),
        refused("f", error="another reason"),
    ]

    summary = summarise(records)

    assert (summary.total, summary.served, summary.refused, summary.served_by_cloud) == (6, 3, 3, 1)
    assert (summary.first, summary.last) == (NOW - timedelta(hours=2), NOW + timedelta(hours=1))
    assert summary.by_rule == {MRN_RULE: 6}
    assert summary.by_task == {"biomedical": 5, "general": 1}
    assert summary.by_group == {"local-biomed": 1, "local-general": 1, "cloud-gpt": 1}
    assert summary.by_profile == {"t4_hybrid": 5, "h100_local": 1}
    assert summary.refusals == {"no local deployment could serve it": 2, "another reason": 1}


def test_a_served_record_without_a_known_locality_counts_as_served_by_cloud() -> None:
    record = served("unknown").model_copy(update={"locality": None})

    assert summarise([record]).served_by_cloud == 1


def test_summary_of_nothing_is_all_zero() -> None:
    summary = summarise([])

    assert (summary.total, summary.served_by_cloud, summary.first, summary.by_rule) == (0, 0, None, {})


# --- the command ------------------------------------------------------------------------------


def test_audit_command_reports_a_clean_log_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(
        tmp_path / "audit.jsonl",
        served("a", at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
        served("b", at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        refused("c", at=datetime(2026, 11, 21, 11, 30, tzinfo=UTC)),
    )

    assert main(["audit", "--log", str(path)]) == 0

    out = capsys.readouterr().out
    assert f"audit log        {path}" in out
    assert "period           2026-11-20 09:00:00 UTC to 2026-11-21 11:30:00 UTC" in out
    assert "local-only       3 decisions" in out
    assert "served locally   2" in out
    assert "refused          1" in out
    assert "served by cloud  0" in out
    assert "VIOLATION" not in out
    assert f"by rule\n  3  {MRN_RULE}" in out
    assert "by task\n  3  biomedical" in out
    assert "by group (served)\n  2  local-biomed" in out
    assert "by profile\n  3  t4_hybrid" in out
    assert "top refusals\n  1  no local deployment could serve it" in out


def test_audit_command_reads_the_log_the_settings_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path / "configured.jsonl", served("a"))
    monkeypatch.setenv("BIOROUTER_AUDIT_LOG", str(path))

    assert main(["audit"]) == 0

    assert f"audit log        {path}" in capsys.readouterr().out


def test_audit_command_since_limits_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    path = write_log(
        tmp_path / "audit.jsonl",
        refused("old", at=now - timedelta(days=10)),
        served("recent", at=now - timedelta(hours=1)),
    )

    assert main(["audit", "--log", str(path), "--since", "7d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1

    assert main(["audit", "--log", str(path), "--since", "2000-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 2


def test_audit_command_json_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [served("a"), refused("b")]
    path = write_log(tmp_path / "audit.jsonl", *records)

    assert main(["audit", "--log", str(path), "--json"]) == 0

    captured = capsys.readouterr()
    assert json.loads(captured.out) == summarise(records).model_dump(mode="json")
    assert captured.err == ""


def test_audit_command_exits_2_and_names_the_violation_when_the_cloud_served_a_local_only_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("fine"), served("leak", group="cloud-gpt", locality="cloud"))

    assert main(["audit", "--log", str(path)]) == 2

    out = capsys.readouterr().out
    assert "served by cloud  1" in out
    assert "VIOLATION: 1 local-only requests were answered by a cloud deployment" in out
    assert "request leak -> cloud-gpt (cloud-gpt-0, http://cloud-gpt:8000/v1)" in out
    assert "served locally   1" in out


def test_audit_command_json_also_exits_2_on_a_violation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("leak", group="cloud-gpt", locality="cloud"))

    assert main(["audit", "--log", str(path), "--json"]) == 2

    captured = capsys.readouterr()
    assert json.loads(captured.out)["served_by_cloud"] == 1
    assert "VIOLATION: 1 local-only requests were answered by a cloud deployment" in captured.err


def test_audit_command_says_so_when_the_period_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("old", at=datetime(2026, 1, 1, tzinfo=UTC)))

    assert main(["audit", "--log", str(path), "--since", "2026-11-21T10:00"]) == 0

    assert capsys.readouterr().out == f"no local-only decisions since 2026-11-21 10:00:00 UTC in {path}\n"


def test_audit_command_rejects_a_bad_since_naming_the_value_and_the_accepted_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("a"))

    assert main(["audit", "--log", str(path), "--since", "last tuesday"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("biorouter audit: --since 'last tuesday' is not a time; expected an age")
    assert "30m, 24h, 7d, 2w" in captured.err
    assert "2026-11-21T10:00" in captured.err


def test_audit_command_reports_a_missing_log_and_how_to_configure_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "audit.jsonl"
    monkeypatch.setenv("BIOROUTER_AUDIT_LOG", str(missing))

    assert main(["audit"]) == 1

    err = capsys.readouterr().err
    assert f"no audit log at {missing} (from BIOROUTER_AUDIT_LOG)" in err
    assert "'audit_log:' in biorouter.yaml" in err
    assert "BIOROUTER_AUDIT_LOG" in err
    assert "--log PATH" in err


def test_audit_command_reports_a_missing_log_given_with_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "audit.jsonl"

    assert main(["audit", "--log", str(missing)]) == 1

    assert f"no audit log at {missing} (given with --log)" in capsys.readouterr().err


def test_audit_command_says_the_log_is_turned_off_when_no_path_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIOROUTER_AUDIT_LOG", "")

    assert main(["audit"]) == 1

    assert "the audit log is turned off" in capsys.readouterr().err


def test_audit_command_skips_a_damaged_line_and_reports_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_log(tmp_path / "audit.jsonl", served("a"))
    with path.open("a", encoding="utf-8") as f:
        f.write("garbage\n")
    write_log(path, refused("b"))

    assert main(["audit", "--log", str(path), "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["total"] == 2
