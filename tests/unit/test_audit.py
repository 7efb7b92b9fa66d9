"""The audit log on its own: entries, the JSON-lines file, and the config key (no Ray)."""

from __future__ import annotations

import json
import threading

import pytest

from fed._config import build_config
from fed._runtime.audit import AuditLog

ADDRS = {"alice": "127.0.0.1:1", "bob": "127.0.0.1:2"}


def test_entries_are_kept_in_order_and_written_as_json_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog("job-1", "alice", str(path))
    log.record(object_id="3:0", fingerprint="mod.train@alice#3", destination="bob", started=1.0,
               outcome="sent", nbytes=123)
    log.record(object_id="4:0", fingerprint="mod.Model.step@alice#4", destination="bob", started=2.0,
               outcome="failed", reason="peer gone")
    log.close()
    entries = log.entries()
    assert [json.loads(line) for line in path.read_text().splitlines()] == entries
    first, second = entries
    assert (first["job"], first["source"], first["destination"]) == ("job-1", "alice", "bob")
    assert (first["object_id"], first["function"], first["bytes"]) == ("3:0", "mod.train", 123)
    assert first["outcome"] == "sent"
    assert first["time"] >= first["started"] == 1.0 and "reason" not in first
    assert (second["function"], second["outcome"], second["reason"]) == ("mod.Model.step", "failed", "peer gone")


def test_a_second_job_appends_to_the_same_file(tmp_path):
    path = tmp_path / "audit.jsonl"
    for job in ("a", "b"):
        log = AuditLog(job, "alice", str(path))
        log.record(object_id="1:0", fingerprint="f@alice#1", destination="bob", started=0.0, outcome="sent")
        log.close()
    assert [json.loads(line)["job"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_records_from_many_threads_are_all_kept(tmp_path):
    log = AuditLog("j", "alice", str(tmp_path / "a.jsonl"))

    def push(i):
        for k in range(100):
            log.record(object_id=f"{i}:{k}", fingerprint="f@alice#1", destination="bob", started=0.0,
                       outcome="sent")
    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(log.entries()) == 800
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 800


def test_audit_log_file_must_be_writable(tmp_path):
    cfg = build_config(party="alice", addresses=ADDRS, config={"audit_log_file": str(tmp_path / "x.jsonl")})
    assert cfg.audit_log_file == str(tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="audit_log_file.*cannot append"):
        build_config(party="alice", addresses=ADDRS, config={"audit_log_file": str(tmp_path / "no" / "x")})
    with pytest.raises(ValueError, match="audit_log_file.*must be a file path"):
        build_config(party="alice", addresses=ADDRS, config={"audit_log_file": 3})
