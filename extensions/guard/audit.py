"""Audit events: one structured event per blocked attempt, through jupyter_server's event bus.

The guard registers its schema with the server's `EventLogger` and emits every refusal
once. Its own sinks (standard error, and the policy's `audit_log_path` when set) are a
listener of that one schema: the bus skips all work for schemas nobody listens to, so the
server's frequent contents events cost nothing extra, and the sinks write JSON lines of the
guard's events only. A browser can POST events of any registered schema to `/api/events`;
the listener drops those, since the guard did not emit them, so forgeries never reach the
security team's log. Sinks configured as `EventLogger.handlers` (root-owned config) receive
the guard's events too, alongside every other schema.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyter_events import EventLogger
from jupyter_server.base.call_context import CallContext

from .decisions import Verdict

SCHEMA_ID = "https://kumohub.dev/events/download-guard/v1"
SCHEMA_VERSION = "1"
SCHEMA_FILE = Path(__file__).with_name("audit-event.v1.yaml")
MAX_PATH_CHARS = 1024

# Set while the guard itself emits; listener tasks inherit the value from emit's context.
_emitting = contextvars.ContextVar("kumohub_guard_emitting", default=False)


def sink_logger(log_path: str | None) -> logging.Logger:
    """A private logger writing one JSON line per event: standard error, plus the file."""
    logger = logging.getLogger(f"kumohub.guard.audit.{id(object())}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


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
        sinks = sink_logger(log_path)

        async def write(logger: EventLogger, schema_id: str, data: dict[str, Any]) -> None:
            if not _emitting.get():
                return  # posted from outside (/api/events), not a refusal of the guard's
            line = {
                "__timestamp__": datetime.now(tz=UTC).isoformat(),
                "__schema__": schema_id,
                "__schema_version__": SCHEMA_VERSION,
                **data,
            }
            sinks.info(json.dumps(line))

        events.add_listener(schema_id=SCHEMA_ID, listener=write)
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
