"""The query service inside a user's server: runs queries in worker threads, tracks them.

Each submitted query gets an id and a record (state, progress, error, a capped copy of
the result). Workers are daemon threads bounded by a semaphore, so a query still running
when the server stops does not hold the process; `close` cancels them on the engine first.
Finished queries are appended to the user's history.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from kumohub.server_settings import ServerSettings

from .engine import (
    FINAL_STATES,
    Column,
    InvalidQuery,
    Progress,
    QueryError,
    QueryRequest,
    RunningQuery,
    Scalar,
    State,
    check_parameters,
    check_sql,
)
from .engines import EngineRegistry
from .history import HistoryStore
from .json_rows import json_rows

log = logging.getLogger(__name__)

MAX_CONCURRENT = 4
KEEP_RECORDS = 100
MAX_PAGE = 1000


class UnknownQuery(KeyError):
    """No query with this id on this server (never submitted, or forgotten)."""


class ResultsUnavailable(Exception):
    """The query has no results to page through (still running, failed or cancelled)."""


@dataclass
class QueryRecord:
    id: str
    sql: str
    engine: str
    workgroup: str | None
    parameters: tuple[Scalar, ...]
    submitted: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    started: float = field(default_factory=time.monotonic)
    state: State = "QUEUED"
    error: str | None = None
    bytes_scanned: int | None = None
    duration_ms: int | None = None
    row_count: int | None = None
    columns: tuple[Column, ...] | None = None
    table: pa.Table | None = None
    cancel_requested: bool = False
    handle: RunningQuery | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def elapsed_ms(self) -> int:
        if self.duration_ms is not None:
            return self.duration_ms
        return int((time.monotonic() - self.started) * 1000)

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "engine": self.engine,
            "workgroup": self.workgroup,
            "sql": self.sql,
            "submitted": self.submitted.isoformat(),
            "elapsed_ms": self.elapsed_ms,
            "bytes_scanned": self.bytes_scanned,
            "error": self.error,
            "row_count": self.row_count,
            "columns": _columns_json(self.columns),
        }

    def history_entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sql": self.sql,
            "engine": self.engine,
            "workgroup": self.workgroup,
            "state": self.state,
            "duration_ms": self.duration_ms,
            "bytes_scanned": self.bytes_scanned,
            "submitted": self.submitted.isoformat(),
            "error": self.error,
        }


def _columns_json(columns: Sequence[Column] | None) -> list[dict[str, str]] | None:
    if columns is None:
        return None
    return [{"name": c.name, "type": c.type} for c in columns]


class QueryService:
    def __init__(
        self, settings: ServerSettings, registry: EngineRegistry, history: HistoryStore
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.history = history
        self.row_cap = settings.query.panel_row_cap
        self._records: OrderedDict[str, QueryRecord] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._closed = False

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self,
        sql: object,
        engine: object = None,
        workgroup: object = None,
        parameters: object = None,
    ) -> QueryRecord:
        """Check the request (InvalidQuery for bad input) and start it in the background."""
        if engine is not None and not isinstance(engine, str):
            raise InvalidQuery("'engine' must be a string")
        if workgroup is not None and not isinstance(workgroup, str):
            raise InvalidQuery("'workgroup' must be a string")
        if parameters is None:
            parameters = []
        if not isinstance(parameters, list):
            raise InvalidQuery("'parameters' must be a list of values for the ? placeholders")
        engine_name = self.registry.check_engine(engine)
        record = QueryRecord(
            id=uuid.uuid4().hex,
            sql=check_sql(sql),
            engine=engine_name,
            workgroup=self.registry.check_workgroup(engine_name, workgroup),
            parameters=check_parameters(parameters),
        )
        with self._lock:
            if self._closed:
                raise InvalidQuery("the server is shutting down")
            self._records[record.id] = record
            self._forget_old()
        threading.Thread(
            target=self._run, args=(record,), name=f"query-{record.id[:8]}", daemon=True
        ).start()
        return record

    def _forget_old(self) -> None:
        while len(self._records) > KEEP_RECORDS:
            oldest = next((r for r in self._records.values() if r.state in FINAL_STATES), None)
            if oldest is None:
                return
            del self._records[oldest.id]

    def _run(self, record: QueryRecord) -> None:
        with self._slots:
            try:
                self._execute(record)
            except QueryError as exc:
                record.state, record.error = exc.state, exc.message
            except Exception as exc:
                log.exception("query %s failed unexpectedly", record.id)
                record.state, record.error = "FAILED", f"{type(exc).__name__}: {exc}"
            finally:
                record.duration_ms = int((time.monotonic() - record.started) * 1000)
                record.handle = None
                self._remember(record)

    def _execute(self, record: QueryRecord) -> None:
        engine = self.registry.get(record.engine)
        request = QueryRequest(record.sql, record.parameters, record.workgroup)
        with record.lock:
            if record.cancel_requested:
                record.state = "CANCELLED"
                record.error = "the query was cancelled before it started"
                return
        handle = engine.submit(request)
        with record.lock:
            record.handle = handle
            if record.cancel_requested:
                handle.cancel()

        def on_progress(progress: Progress) -> None:
            if progress.state not in FINAL_STATES:
                record.state = progress.state
            record.bytes_scanned = progress.bytes_scanned

        result = handle.wait(on_progress)
        record.bytes_scanned = result.bytes_scanned
        record.row_count = result.table.num_rows
        record.columns = result.columns
        record.table = result.table.slice(0, self.row_cap)
        record.state = "SUCCEEDED"

    def _remember(self, record: QueryRecord) -> None:
        try:
            self.history.append(record.history_entry())
        except OSError:
            log.exception("could not write the query history to %s", self.history.path)

    # -- reading -------------------------------------------------------------------------

    def get(self, query_id: str) -> QueryRecord:
        with self._lock:
            record = self._records.get(query_id)
        if record is None:
            raise UnknownQuery(query_id)
        return record

    def cancel(self, query_id: str) -> QueryRecord:
        record = self.get(query_id)
        with record.lock:
            if record.state in FINAL_STATES:
                return record
            record.cancel_requested = True
            handle = record.handle
        if handle is not None:
            handle.cancel()
        return record

    def results(self, query_id: str, offset: int, limit: int) -> dict[str, Any]:
        record = self.get(query_id)
        if record.state != "SUCCEEDED" or record.table is None:
            detail = f": {record.error}" if record.error else ""
            raise ResultsUnavailable(
                f"query {query_id} has no results: it is {record.state}{detail}"
            )
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}")
        table = record.table
        page = table.slice(offset, limit) if offset < table.num_rows else table.slice(0, 0)
        return {
            "columns": _columns_json(record.columns) or [],
            "rows": json_rows(page),
            "offset": offset,
            "limit": limit,
            "total_rows": table.num_rows,
            "truncated": (record.row_count or 0) > table.num_rows,
        }

    def engines(self) -> dict[str, Any]:
        return {
            "engines": list(self.registry.names),
            "default": self.registry.default,
            "workgroups": list(self.registry.workgroups),
            "default_workgroup": self.registry.default_workgroup,
            "row_cap": self.row_cap,
            "bytes_scanned_limit": self.settings.query.bytes_scanned_limit,
        }

    def close(self) -> None:
        """Cancel what still runs on the engines (Athena bills running queries)."""
        with self._lock:
            self._closed = True
            running = [r for r in self._records.values() if r.state not in FINAL_STATES]
        for record in running:
            self.cancel(record.id)
        self.registry.close()
