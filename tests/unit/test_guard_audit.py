"""Audit events: one JSON line per refusal, through a real jupyter_events EventLogger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from jupyter_events import EventLogger
from kumohub.extensions.guard.audit import SCHEMA_ID, AuditLog
from kumohub.extensions.guard.decisions import Verdict


def lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def on_the_event_loop(events: EventLogger, act: Callable[[], None]) -> None:
    """Emit as the server does, inside its event loop, and let the listeners finish."""

    async def run() -> None:
        act()
        await events.gather_listeners()

    asyncio.run(run())


def test_each_refusal_is_one_event_with_who_where_and_why(tmp_path: Path) -> None:
    log_path = tmp_path / "audit" / "guard.jsonl"
    events = EventLogger()
    audit = AuditLog.attach(events, "alice", "gpu", str(log_path))
    verdict = Verdict("files", "raw file downloads are closed", "files/data.csv")
    on_the_event_loop(events, lambda: audit.blocked(verdict, method="HEAD", user="alice"))
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
    on_the_event_loop(events, lambda: events.emit(schema_id=SCHEMA_ID, data=forged))
    assert lines(log_path) == []


def test_other_schemas_cost_the_event_bus_nothing(tmp_path: Path) -> None:
    """The contents service emits on every read; with no listener of its own it is skipped."""
    events = EventLogger()
    AuditLog.attach(events, "alice", "", str(tmp_path / "guard.jsonl"))
    contents = "https://events.jupyter.org/jupyter_server/contents_service/v1"
    assert events.emit(schema_id=contents, data={"action": "get", "path": "x"}) is None


def test_long_paths_are_truncated(tmp_path: Path) -> None:
    log_path = tmp_path / "guard.jsonl"
    events = EventLogger()
    audit = AuditLog.attach(events, "alice", "", str(log_path))
    verdict = Verdict("files", "closed", "files/" + "a" * 5000)
    on_the_event_loop(events, lambda: audit.blocked(verdict, method="GET", user=""))
    [event] = lines(log_path)
    assert len(str(event["path"])) == 1024
