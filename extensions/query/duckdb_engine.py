"""DuckDB engine (local mode): real SQL over the sample Parquet files.

Each table is a view in the `sales` schema of one in-memory database; every query gets its
own cursor so `interrupt()` stops exactly that query. Bytes scanned is an honest upper
bound: the Parquet file size of every sample table the query names (DuckDB, like Athena,
reads only the columns it needs, so the true figure is usually lower).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from .engine import (
    Column,
    InvalidQuery,
    ProgressCallback,
    QueryCancelled,
    QueryEngine,
    QueryFailed,
    QueryRequest,
    QueryResult,
    RunningQuery,
    ScanLimitExceeded,
    TableInfo,
    check_parameters,
    check_sql,
)
from .formatting import human_bytes
from .sample_data import SCHEMA, TABLES, ensure_sample_data

_LITERALS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")
# How long a cancel keeps interrupting: covers the gap before `execute` reaches DuckDB.
_INTERRUPT_WINDOW_S = 10.0


class DuckDBQuery(RunningQuery):
    def __init__(
        self, cursor: duckdb.DuckDBPyConnection, request: QueryRequest, bytes_scanned: int
    ) -> None:
        super().__init__()
        self._cursor = cursor
        self._request = request
        self._finished = threading.Event()
        self.progress.bytes_scanned = bytes_scanned

    def wait(self, on_progress: ProgressCallback | None = None) -> QueryResult:
        try:
            if self.cancel_requested:
                raise QueryCancelled("the query was cancelled before it started")
            self.progress.state = "RUNNING"
            if on_progress:
                on_progress(self.progress)
            try:
                relation = self._cursor.sql(
                    self._request.sql, params=list(self._request.parameters) or None
                )
                table = relation.to_arrow_table() if relation is not None else pa.table({})
                types = tuple(relation.types) if relation is not None else ()
            except duckdb.InterruptException:
                raise QueryCancelled("the query was cancelled on the engine") from None
            except duckdb.Error as exc:
                if self.cancel_requested:
                    raise QueryCancelled("the query was cancelled on the engine") from None
                raise QueryFailed(_duckdb_message(exc)) from None
            columns = tuple(
                Column(name, str(kind))
                for name, kind in zip(table.column_names, types, strict=False)
            )
            self.progress.state = "SUCCEEDED"
            return QueryResult(table, columns, self.progress.bytes_scanned)
        finally:
            self._finished.set()
            self._cursor.close()

    def _stop_on_engine(self) -> None:
        def keep_interrupting() -> None:
            deadline = time.monotonic() + _INTERRUPT_WINDOW_S
            while not self._finished.is_set() and time.monotonic() < deadline:
                try:
                    self._cursor.interrupt()
                except duckdb.Error:
                    return
                self._finished.wait(0.05)

        threading.Thread(target=keep_interrupting, name="duckdb-cancel", daemon=True).start()


def _duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's own message without the Python class noise."""
    return str(exc).strip() or type(exc).__name__


class DuckDBEngine(QueryEngine):
    name = "duckdb"

    def __init__(self, data_dir: Path | None, bytes_scanned_limit: int | None = None) -> None:
        self.data_dir = ensure_sample_data(data_dir)
        self.bytes_scanned_limit = bytes_scanned_limit
        self._lock = threading.Lock()
        self._db = duckdb.connect(":memory:")
        self._table_bytes: dict[str, int] = {}
        self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for table in TABLES:
            path = self.data_dir / f"{table}.parquet"
            self._table_bytes[table] = path.stat().st_size
            # A view body cannot take prepared parameters; the path is ours, quoted as a literal.
            literal = "'" + str(path).replace("'", "''") + "'"
            view = f"CREATE OR REPLACE VIEW {SCHEMA}.{table} AS SELECT * FROM read_parquet"  # noqa: S608
            self._db.execute(f"{view}({literal})")
        self._db.execute(f"USE {SCHEMA}")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            cursor = self._db.cursor()
        cursor.execute(f"USE {SCHEMA}")
        return cursor

    def estimate_bytes(self, sql: str) -> int:
        """Parquet bytes of the sample tables the statement names (see module docstring)."""
        words = set(_WORD.findall(_LITERALS.sub(" ", sql).lower()))
        return sum(size for table, size in self._table_bytes.items() if table in words)

    def submit(self, request: QueryRequest) -> DuckDBQuery:
        sql = check_sql(request.sql)
        parameters = check_parameters(request.parameters)
        scanned = self.estimate_bytes(sql)
        limit = self.bytes_scanned_limit
        if limit is not None and scanned > limit:
            raise ScanLimitExceeded(
                f"the query would scan {human_bytes(scanned)}, over the limit of "
                f"{human_bytes(limit)} per query set for this platform; "
                "select fewer tables or columns"
            )
        return DuckDBQuery(
            self._cursor(), QueryRequest(sql, parameters, request.workgroup), scanned
        )

    def _rows(self, sql: str, parameters: list[object]) -> list[tuple]:
        cursor = self._cursor()
        try:
            return cursor.execute(sql, parameters).fetchall()
        finally:
            cursor.close()

    def databases(self) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_schema NOT IN (?, ?) ORDER BY 1",
            list(_SYSTEM_SCHEMAS),
        )
        return [row[0] for row in rows]

    def tables(self, database: str) -> list[TableInfo]:
        rows = self._rows(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = ? ORDER BY 1",
            [database],
        )
        if not rows and database not in self.databases():
            raise InvalidQuery(f"unknown database {database!r}")
        return [TableInfo(name, kind.lower()) for name, kind in rows]

    def columns(self, database: str, table: str) -> list[Column]:
        rows = self._rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [database, table],
        )
        if not rows:
            raise InvalidQuery(f"unknown table {database}.{table}")
        return [Column(name, kind) for name, kind in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
