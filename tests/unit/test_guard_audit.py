"""Audit events: one JSON line per refusal, through a real jupyter_events EventLogger."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_events import EventLogger
from kumohub.extensions.guard.audit import SCHEMA_ID, AuditLog
from kumohub.extensions.guard.decisions import Verdict


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_refusal_is_one_event_with_who_where_and_why(tmp_path: Path) -> None:
    log_path = tmp_path / "audit" / "guard.jsonl"
    audit = AuditLog.attach(EventLogger(), "alice", "gpu", str(log_path))
    audit.blocked(
        Verdict("files", "raw file downloads are closed", "files/data.csv"),
        method="HEAD",
        user="alice",
    )
    [event] = lines(log_path)
    assert event["__schema__"] == SCHEMA_ID
    assert {k: event[k] for k in ("user", "server_owner", "server_name", "method")} == {
        "user": "alice",
        "server_owner": "alice",
        "server_name": "gpu",
        "method": "HEAD",
    }
    assert event["route_class"] == "files" and event["path"] == "files/data.csv"
    assert "__timestamp__" in event


def test_events_from_outside_the_guard_do_not_reach_its_log(tmp_path: Path) -> None:
    """A browser can POST any registered schema to /api/events; the guard's log ignores it."""
    log_path = tmp_path / "guard.jsonl"
    events = EventLogger()
    AuditLog.attach(events, "alice", "", str(log_path))
    forged = {
        "user": "bob",
        "server_owner": "alice",
        "server_name": "",
        "route_class": "files",
        "path": "files/x",
        "reason": "forged",
        "method": "GET",
    }
    events.emit(schema_id=SCHEMA_ID, data=forged)
    assert lines(log_path) == []


def test_long_paths_are_truncated(tmp_path: Path) -> None:
    log_path = tmp_path / "guard.jsonl"
    audit = AuditLog.attach(EventLogger(), "alice", "", str(log_path))
    audit.blocked(Verdict("files", "closed", "files/" + "a" * 5000), method="GET", user="")
    [event] = lines(log_path)
    assert len(str(event["path"])) == 1024
