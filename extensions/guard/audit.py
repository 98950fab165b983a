"""Audit events: one structured event per blocked attempt, through jupyter_server's event bus.

The guard registers its schema with the server's `EventLogger` and emits every refusal
once. Its own sinks (standard error, and the policy's `audit_log_path` when set) write
JSON lines of this schema only, and only events the guard itself emitted: a browser can
POST events of any registered schema to `/api/events`, and such forgeries must not land
in the security team's log. Other sinks (`EventLogger.handlers` in a root-owned config)
receive the events too, forged ones included.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from jupyter_events import EventLogger
from jupyter_server.base.call_context import CallContext

from .decisions import Verdict

SCHEMA_ID = "https://kumohub.dev/events/download-guard/v1"
SCHEMA_FILE = Path(__file__).with_name("audit-event.v1.yaml")
MAX_PATH_CHARS = 1024

_emitting = contextvars.ContextVar("kumohub_guard_emitting", default=False)


class GuardEventsOnly(logging.Filter):
    """Pass the guard's own events; drop other schemas and events posted from outside."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        return (
            isinstance(message, dict) and message.get("__schema__") == SCHEMA_ID and _emitting.get()
        )


def guard_sinks(log_path: str | None) -> list[logging.Handler]:
    """Standard error (collected with the pod's logs) plus the policy's file, if any."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(GuardEventsOnly())
    return handlers


@dataclass
class AuditLog:
    """Emits blocked-attempt events for one user server."""

    events: EventLogger
    server_owner: str
    server_name: str

    @classmethod
    def attach(
        cls, events: EventLogger, server_owner: str, server_name: str, log_path: str | None
    ) -> AuditLog:
        """Register the schema and the guard's sinks on the server's event logger."""
        if SCHEMA_ID not in events.schemas:
            events.register_event_schema(SCHEMA_FILE)
        for handler in guard_sinks(log_path):
            events.register_handler(handler)
        return cls(events, server_owner, server_name)

    def blocked(self, verdict: Verdict, *, method: str, user: str) -> None:
        token = _emitting.set(True)
        try:
            self.events.emit(
                schema_id=SCHEMA_ID,
                data={
                    "user": user,
                    "server_owner": self.server_owner,
                    "server_name": self.server_name,
                    "route_class": verdict.route_class,
                    "path": verdict.path[:MAX_PATH_CHARS],
                    "reason": verdict.reason,
                    "method": method,
                },
            )
        finally:
            _emitting.reset(token)


def current_username() -> str:
    """The signed-in user of the request being handled, for events raised inside a handler."""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    user = getattr(handler, "current_user", None)
    return getattr(user, "username", "") or ""
