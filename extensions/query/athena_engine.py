"""Amazon Athena engine (boto3): runs in the user's workgroup, results read from S3.

Polling backs off from 0.2 s to 2 s. Each poll reports state, elapsed time and data
scanned. A workgroup's BytesScannedCutoffPerQuery cannot be set per query, so the platform's
ceiling (`query.bytes_scanned_limit`) is enforced here: a running query that passes it is
stopped with StopQueryExecution and reported with a clear message.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from kumohub.settings import AthenaSettings

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
    Scalar,
    ScanLimitExceeded,
    TableInfo,
    check_parameters,
    check_sql,
)
from .formatting import human_bytes
from .result_reader import ResultReader, error_code

POLL_FIRST_S = 0.2
POLL_MAX_S = 2.0
POLL_FACTOR = 1.5
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "Throttling", "SlowDown"}
)
# Consecutive throttled polls (after botocore's own retries) before we give up.
MAX_THROTTLED_POLLS = 10
# After a cancel, how long we wait for Athena to confirm before reporting it cancelled anyway.
CANCEL_CONFIRM_S = 30.0
MAX_POOL = 16


def athena_literal(value: Scalar) -> str:
    """One ExecutionParameters entry: a typed SQL literal Athena binds to a `?`."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan()"
        if math.isinf(value):
            return "infinity()" if value > 0 else "-infinity()"
        return f"DOUBLE '{value!r}'"
    if isinstance(value, decimal.Decimal):
        return f"DECIMAL '{value}'"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='milliseconds')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def aws_message(exc: Exception, action: str) -> str:
    """AWS's own words, prefixed with what we were doing."""
    if isinstance(exc, NoCredentialsError):
        return f"{action}: no AWS credentials are available to this server"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", str(exc))
        if code in THROTTLING_CODES:
            return f"{action}: AWS is throttling requests ({code}: {message}); try again shortly"
        return f"{action}: {code}: {message}"
    return f"{action}: {exc}"


class AthenaQuery(RunningQuery):
    def __init__(self, engine: AthenaEngine, execution_id: str, workgroup: str) -> None:
        super().__init__()
        self._engine = engine
        self.execution_id = execution_id
        self.workgroup = workgroup
        self.progress.engine_id = execution_id
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._cancelled_at: float | None = None

    def _poll(self) -> dict[str, Any]:
        return self._engine.athena.get_query_execution(QueryExecutionId=self.execution_id)[
            "QueryExecution"
        ]

    def wait(self, on_progress: ProgressCallback | None = None) -> QueryResult:
        first, longest = self._engine.poll_first_s, self._engine.poll_max_s
        delay = first
        throttled = 0
        limit = self._engine.bytes_scanned_limit
        while True:
            try:
                execution = self._poll()
                throttled = 0
            except ClientError as exc:
                if error_code(exc) not in THROTTLING_CODES or throttled >= MAX_THROTTLED_POLLS:
                    raise QueryFailed(aws_message(exc, "Athena status check failed")) from None
                throttled += 1
                self._sleep(min(delay * 2**throttled, 10))
                continue
            except BotoCoreError as exc:
                raise QueryFailed(aws_message(exc, "Athena status check failed")) from None
            status = execution.get("Status", {})
            state = status.get("State", "QUEUED")
            scanned = execution.get("Statistics", {}).get("DataScannedInBytes")
            self.progress.state = state
            self.progress.bytes_scanned = scanned
            if on_progress:
                on_progress(self.progress)
            if state == "SUCCEEDED":
                return self._results(execution)
            if state == "FAILED":
                reason = status.get("StateChangeReason") or "Athena gave no reason"
                raise QueryFailed(f"Athena query failed: {reason}")
            if state == "CANCELLED":
                if self.cancel_requested:
                    raise QueryCancelled("the query was cancelled on Athena")
                raise QueryCancelled("the query was cancelled on Athena by someone else")
            if limit is not None and scanned is not None and scanned > limit:
                self._stop_on_engine()
                self.progress.state = "FAILED"
                raise ScanLimitExceeded(
                    f"the query was stopped after scanning {human_bytes(scanned)}, over the "
                    f"limit of {human_bytes(limit)} per query set for this platform; "
                    "filter on partitions or select fewer columns"
                )
            if self.cancel_requested:
                if self._cancelled_at is None:
                    self._cancelled_at = time.monotonic()
                elif time.monotonic() - self._cancelled_at > CANCEL_CONFIRM_S:
                    raise QueryCancelled("cancel requested; Athena has not confirmed it yet")
                if not self._stopped:
                    self._stop_on_engine()
                delay = first
            self._sleep(delay)
            delay = min(delay * POLL_FACTOR, longest)

    def _sleep(self, seconds: float) -> None:
        """Sleep between polls; a cancel wakes the first wait up at once."""
        if self.cancel_requested:
            time.sleep(seconds)
        else:
            self._cancel_requested.wait(seconds)

    def _results(self, execution: dict[str, Any]) -> QueryResult:
        location = execution.get("ResultConfiguration", {}).get("OutputLocation")
        try:
            table, columns = self._engine.reader.read(self.execution_id, location)
        except ClientError as exc:
            raise QueryFailed(aws_message(exc, "reading the query results failed")) from None
        return QueryResult(
            table,
            tuple(Column(c.name, c.display_type) for c in columns),
            self.progress.bytes_scanned,
        )

    def _stop_on_engine(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            self._engine.athena.stop_query_execution(QueryExecutionId=self.execution_id)
        except (ClientError, BotoCoreError):
            # The poll loop still sees the final state; a failed stop is retried there.
            with self._stop_lock:
                self._stopped = False


class AthenaEngine(QueryEngine):
    name = "athena"

    def __init__(
        self,
        settings: AthenaSettings,
        *,
        workgroup: str | None = None,
        workgroups: tuple[str, ...] = (),
        output_location: str | None = None,
        bytes_scanned_limit: int | None = None,
        session: boto3.session.Session | None = None,
        retry_attempts: int = 5,
        poll_seconds: tuple[float, float] = (POLL_FIRST_S, POLL_MAX_S),
    ) -> None:
        self.settings = settings
        self.workgroup = workgroup or settings.default_workgroup
        self.workgroups = workgroups or (self.workgroup,)
        self.output_location = output_location or settings.output_location
        self.bytes_scanned_limit = bytes_scanned_limit
        self.poll_first_s, self.poll_max_s = poll_seconds
        session = session or boto3.session.Session()
        config = Config(
            region_name=settings.region,
            retries={"mode": "standard", "max_attempts": retry_attempts},
            # A custom endpoint (tests, VPC endpoints by IP) cannot do virtual-host buckets.
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            max_pool_connections=MAX_POOL,
            connect_timeout=5,
            read_timeout=60,
        )
        kwargs = {"config": config, "endpoint_url": settings.endpoint_url}
        self.athena = session.client("athena", **kwargs)
        self.s3 = session.client("s3", **kwargs)
        self.glue = session.client("glue", **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="athena-results")
        self.reader = ResultReader(self.athena, self.s3, self._pool)

    def check_workgroup(self, workgroup: str | None) -> str:
        chosen = workgroup or self.workgroup
        if chosen not in self.workgroups:
            raise InvalidQuery(
                f"unknown workgroup {chosen!r}: you may use {', '.join(self.workgroups)}"
            )
        return chosen

    def submit(self, request: QueryRequest) -> AthenaQuery:
        sql = check_sql(request.sql)
        parameters = check_parameters(request.parameters)
        workgroup = self.check_workgroup(request.workgroup)
        call: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": workgroup,
            "QueryExecutionContext": {"Catalog": self.settings.catalog},
            "ResultConfiguration": {"OutputLocation": self.output_location},
        }
        if parameters:
            call["ExecutionParameters"] = [athena_literal(value) for value in parameters]
        try:
            started = self.athena.start_query_execution(**call)
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(aws_message(exc, "Athena did not start the query")) from None
        return AthenaQuery(self, started["QueryExecutionId"], workgroup)

    def _glue(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            pages = self.glue.get_paginator(operation).paginate(**kwargs)
            return [item for page in pages for item in page.get(key, [])]
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(aws_message(exc, "reading the Glue catalog failed")) from None

    def databases(self) -> list[str]:
        return sorted(db["Name"] for db in self._glue("get_databases", "DatabaseList"))

    def tables(self, database: str) -> list[TableInfo]:
        tables = self._glue("get_tables", "TableList", DatabaseName=database)
        return sorted(
            (TableInfo(t["Name"], (t.get("TableType") or "").lower() or None) for t in tables),
            key=lambda t: t.name,
        )

    def columns(self, database: str, table: str) -> list[Column]:
        try:
            found = self.glue.get_table(DatabaseName=database, Name=table)["Table"]
        except (ClientError, BotoCoreError) as exc:
            raise QueryFailed(aws_message(exc, "reading the Glue catalog failed")) from None
        descriptor = found.get("StorageDescriptor", {})
        listed = [*descriptor.get("Columns", []), *found.get("PartitionKeys", [])]
        return [Column(c["Name"], c.get("Type", "")) for c in listed]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
