"""The Athena engine against moto in server mode over HTTP (boto3 -> 127.0.0.1).

moto does not run SQL: result sets are injected through its
`/moto-api/static/athena/query-results` API and states, bytes scanned, failure reasons and
faults are shaped by the test (tests/support/aws.py lists what moto leaves out).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from kumohub.extensions.query.athena_engine import AthenaEngine
from kumohub.extensions.query.catalog import CatalogCache
from kumohub.extensions.query.dataframe import to_dataframe
from kumohub.extensions.query.engine import (
    InvalidQuery,
    Progress,
    QueryCancelled,
    QueryFailed,
    QueryRequest,
    ScanLimitExceeded,
)

from kumohub.settings import AthenaSettings
from tests.support.aws import AwsStandIn

BUCKET = "athena-results"
FAST_POLLS = (0.02, 0.1)


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsStandIn]:
    server = AwsStandIn()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh(aws: AwsStandIn) -> AwsStandIn:
    aws.reset()
    aws.client("s3").create_bucket(Bucket=BUCKET)
    athena = aws.client("athena")
    for name in ("analysts", "finance"):
        athena.create_work_group(Name=name, Configuration={}, Description=name)
    return aws


def make_engine(aws: AwsStandIn, **kwargs: Any) -> AthenaEngine:
    settings = AthenaSettings(
        region="us-east-1",
        endpoint_url=aws.url,
        output_location=f"s3://{BUCKET}/results/",
        default_workgroup="analysts",
    )
    kwargs.setdefault("workgroups", ("analysts", "finance"))
    kwargs.setdefault("poll_seconds", FAST_POLLS)
    return AthenaEngine(settings, session=aws.session(), **kwargs)


@pytest.fixture
def engine(fresh: AwsStandIn) -> Iterator[AthenaEngine]:
    engine = make_engine(fresh)
    yield engine
    engine.close()


def result_set(columns: list[tuple[str, str, int, int]], rows: list[list[str | None]]) -> dict:
    """An Athena result set as GetQueryResults shows it: the header row first."""
    header = {"Data": [{"VarCharValue": name} for name, *_ in columns]}
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    return {
        "rows": [header, *data],
        "column_info": [
            {"Name": n, "Label": n, "Type": t, "Precision": p, "Scale": s, "Nullable": "UNKNOWN"}
            for n, t, p, s in columns
        ],
    }


EVERY_TYPE = [
    ("c_tinyint", "tinyint", 3, 0),
    ("c_smallint", "smallint", 5, 0),
    ("c_int", "integer", 10, 0),
    ("c_bigint", "bigint", 19, 0),
    ("c_double", "double", 17, 0),
    ("c_real", "float", 17, 0),
    ("c_decimal", "decimal", 10, 2),
    ("c_bool", "boolean", 0, 0),
    ("c_date", "date", 0, 0),
    ("c_ts", "timestamp", 3, 0),
    ("c_varchar", "varchar", 2147483647, 0),
    ("c_char", "char", 2, 0),
    ("c_array", "array", 0, 0),
    ("c_map", "map", 0, 0),
    ("c_row", "row", 0, 0),
    ("c_json", "json", 0, 0),
]
EVERY_TYPE_ROWS = [
    ["1", "300", "70000", "9007199254740993", "1.5", "2.25", "12345.67", "true", "2024-02-29",
     "2024-02-29 13:45:01.123", "hello, world", "ab", "[1, 2]", "{a=1}", "{x=1, y=2}", "true"],
    ["-128", "-32768", "-2147483648", "-9223372036854775808", "NaN", "-Infinity", "-0.01",
     "false", "1970-01-01", "1970-01-01 00:00:00.000", "", "x ", "[]", "{}", "{x=null, y=3}",
     "null"],
    [None] * 16,
]  # fmt: skip


def comparable(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with NaN spelled out (NaN never equals itself)."""
    return [
        {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in table.to_pylist()
    ]


def run(engine: AthenaEngine, sql: str = "SELECT 1", **kwargs: Any):
    return engine.submit(QueryRequest(sql, **kwargs)).wait()


def test_every_athena_type_maps_to_arrow_and_pandas(fresh: AwsStandIn, engine: AthenaEngine):
    fresh.inject_results([result_set(EVERY_TYPE, EVERY_TYPE_ROWS)])
    result = run(engine)
    assert engine.reader.last_source == "S3"
    table = result.table
    assert [f.type for f in table.schema] == [
        pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.float64(), pa.float32(),
        pa.decimal128(10, 2), pa.bool_(), pa.date32(), pa.timestamp("ms"),
        *[pa.string()] * 6,
    ]  # fmt: skip
    first, second, nulls = table.to_pylist()
    assert first["c_bigint"] == 9007199254740993  # exact, not through a float
    assert first["c_decimal"] == decimal.Decimal("12345.67")
    assert first["c_ts"] == dt.datetime(2024, 2, 29, 13, 45, 1, 123000)
    assert first["c_date"] == dt.date(2024, 2, 29)
    assert first["c_varchar"] == "hello, world" and first["c_row"] == "{x=1, y=2}"
    assert math.isnan(second["c_double"]) and second["c_real"] == -math.inf
    assert second["c_bigint"] == -(2**63) and second["c_bool"] is False
    assert second["c_varchar"] == ""  # an empty string is not NULL ...
    assert second["c_char"] == "x "
    assert all(value is None for value in nulls.values())  # ... and NULL is not ""
    assert [c.type for c in result.columns][6] == "decimal(10,2)"

    frame = to_dataframe(table)
    assert [str(t) for t in frame.dtypes[:4]] == ["Int8", "Int16", "Int32", "Int64"]
    assert frame["c_double"].dtype == "float64" and frame["c_real"].dtype == "float32"
    assert frame["c_bool"].dtype == pd.BooleanDtype()
    assert str(frame["c_ts"].dtype) == "datetime64[ms]"
    assert str(frame["c_date"].dtype).startswith("datetime64")
    assert frame["c_int"].isna().tolist() == [False, False, True]

    # The paging fallback (S3 object unreadable) gives exactly the same table.
    fresh.shaping.denied_s3_prefixes.add(f"/{BUCKET}/")
    fresh.inject_results([result_set(EVERY_TYPE, EVERY_TYPE_ROWS)])
    paged = run(engine)
    assert engine.reader.last_source == "GetQueryResults"
    assert paged.table.schema == table.schema
    assert comparable(paged.table) == comparable(table)


def test_quotes_commas_and_newlines_as_athena_writes_them(fresh: AwsStandIn, engine: AthenaEngine):
    value = 'say "hi", then\nleave'
    columns = [("id", "integer", 10, 0), ("note", "varchar", 100, 0)]
    fresh.inject_results([result_set(columns, [["1", value], ["2", None]])])
    fresh.slow_transitions(2)
    query = engine.submit(QueryRequest("SELECT id, note FROM notes"))
    # moto writes the CSV without escaping quotes; put the object Athena would write.
    location = fresh.athena_backend.executions[query.execution_id].config["OutputLocation"]
    key = location.split(f"s3://{BUCKET}/", 1)[1]
    athena_csv = '"id","note"\n"1","say ""hi"", then\nleave"\n"2",\n'
    fresh.client("s3").put_object(Bucket=BUCKET, Key=key, Body=athena_csv.encode())
    assert query.wait().table.to_pylist() == [{"id": 1, "note": value}, {"id": 2, "note": None}]


def test_large_result_comes_from_s3_in_parallel_ranges(fresh: AwsStandIn, engine: AthenaEngine):
    rows = 200_000
    columns = [
        ("order_id", "bigint", 19, 0),
        ("customer", "varchar", 64, 0),
        ("amount", "decimal", 12, 2),
        ("ordered_at", "timestamp", 3, 0),
        ("express", "boolean", 0, 0),
        ("weight", "double", 17, 0),
    ]
    start = dt.datetime(2025, 1, 1)
    data = [
        [
            str(i),
            f"customer-{i % 977:04d}-with-a-longer-name-for-realistic-width",
            f"{(i * 37) % 100000 / 100:.2f}",
            (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.000"),
            "true" if i % 3 == 0 else "false",
            None if i % 10 == 0 else f"{i / 7:.6f}",
        ]
        for i in range(rows)
    ]
    fresh.inject_results([result_set(columns, data)])
    fresh.shaping.s3_ranges.clear()
    # Parts smaller than production's, so this ~15 MB object takes the parallel path.
    engine.reader.first_part_bytes = engine.reader.part_bytes = 2 * 1024 * 1024
    frame = to_dataframe(run(engine).table)
    assert engine.reader.last_source == "S3" and engine.reader.last_parts >= 4
    assert len(frame) == rows
    assert frame["order_id"].sum() == sum(range(rows))
    assert frame["amount"].sum() == sum(decimal.Decimal(r[2]) for r in data)
    assert int(frame["express"].sum()) == sum(1 for r in data if r[4] == "true")
    assert int(frame["weight"].isna().sum()) == rows // 10
    assert frame["ordered_at"].iloc[-1] == pd.Timestamp(start + dt.timedelta(seconds=rows - 1))
    ranged = [r for r in fresh.shaping.s3_ranges if r]
    assert len(ranged) == engine.reader.last_parts, ranged  # each part was its own ranged GET


def test_progress_reports_state_and_bytes_scanned(fresh: AwsStandIn, engine: AthenaEngine):
    fresh.inject_results([result_set([("n", "bigint", 19, 0)], [["7"]])])
    fresh.slow_transitions(3)
    fresh.shaping.default_scanned = lambda polls: polls * 1_500_000
    seen: list[tuple[str, int | None]] = []

    def record(progress: Progress) -> None:
        seen.append((progress.state, progress.bytes_scanned))

    result = engine.submit(QueryRequest("SELECT count(*) FROM big")).wait(record)
    assert result.table.to_pylist() == [{"n": 7}]
    states = [state for state, _ in seen]
    assert states[0] == "QUEUED" and "RUNNING" in states and states[-1] == "SUCCEEDED"
    scanned = [b for _, b in seen]
    assert scanned == sorted(scanned) and scanned[-1] == result.bytes_scanned > 0


def test_cancel_stops_the_query_on_athena(fresh: AwsStandIn, engine: AthenaEngine):
    fresh.slow_transitions(10_000)
    query = engine.submit(QueryRequest("SELECT * FROM huge"))
    threading.Timer(0.3, query.cancel).start()
    with pytest.raises(QueryCancelled, match="cancelled on Athena"):
        query.wait()
    assert fresh.athena_backend.executions[query.execution_id].status == "CANCELLED"
    assert "StopQueryExecution" in fresh.shaping.calls


def test_failed_and_cancelled_elsewhere_carry_athena_reason(
    fresh: AwsStandIn, engine: AthenaEngine
):
    fresh.slow_transitions(10_000)
    query = engine.submit(QueryRequest("SELECT nope FROM t"))
    execution = fresh.athena_backend.executions[query.execution_id]
    reason = "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    fresh.shaping.reasons[query.execution_id] = reason
    execution.status = "FAILED"
    with pytest.raises(QueryFailed, match="COLUMN_NOT_FOUND: line 1:8") as failed:
        query.wait()
    assert failed.value.message == f"Athena query failed: {reason}"

    other = engine.submit(QueryRequest("SELECT 1"))
    fresh.athena_backend.executions[other.execution_id].status = "CANCELLED"
    with pytest.raises(QueryCancelled, match="by someone else"):
        other.wait()


def test_scan_ceiling_stops_a_query_that_scans_too_much(fresh: AwsStandIn):
    engine = make_engine(fresh, bytes_scanned_limit=10_000_000)
    try:
        fresh.slow_transitions(10_000)
        fresh.shaping.default_scanned = lambda polls: polls * 4_000_000
        query = engine.submit(QueryRequest("SELECT * FROM everything"))
        with pytest.raises(ScanLimitExceeded, match=r"after scanning 1\d\.0 MB.*limit of 10\.0 MB"):
            query.wait()
        assert fresh.athena_backend.executions[query.execution_id].status == "CANCELLED"
    finally:
        engine.close()


def test_access_denied_and_throttling(fresh: AwsStandIn):
    engine = make_engine(fresh, retry_attempts=2)
    try:
        fresh.shaping.fail_next("StartQueryExecution", "AccessDeniedException")
        with pytest.raises(QueryFailed, match="did not start the query: AccessDeniedException"):
            engine.submit(QueryRequest("SELECT 1"))

        # Throttled polls are retried (botocore, then our own backoff) and the query finishes.
        fresh.inject_results([result_set([("n", "integer", 10, 0)], [["1"]])])
        fresh.shaping.fail_next("GetQueryExecution", "ThrottlingException", times=3)
        assert run(engine).table.to_pylist() == [{"n": 1}]

        # Throttling that does not stop is reported as such, not as a hang.
        fresh.shaping.fail_next("StartQueryExecution", "ThrottlingException", times=5)
        with pytest.raises(QueryFailed, match="throttling"):
            engine.submit(QueryRequest("SELECT 1"))
    finally:
        engine.close()


def test_workgroups_and_parameters(fresh: AwsStandIn, engine: AthenaEngine):
    with pytest.raises(InvalidQuery, match=r"unknown workgroup 'marketing'.*analysts, finance"):
        engine.submit(QueryRequest("SELECT 1", workgroup="marketing"))
    with pytest.raises(InvalidQuery, match="parameter 1 is a dict"):
        engine.submit(QueryRequest("SELECT ?", ({"a": 1},)))  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="empty"):
        engine.submit(QueryRequest(" "))

    values = ("JP' OR 1=1 --", 3, 2.5, True, None, decimal.Decimal("9.99"), dt.date(2024, 1, 31))
    query = engine.submit(QueryRequest("SELECT ?, ?, ?, ?, ?, ?, ?", values, workgroup="finance"))
    execution = fresh.athena_backend.executions[query.execution_id]
    assert execution.workgroup.name == "finance"
    assert execution.query == "SELECT ?, ?, ?, ?, ?, ?, ?"  # nothing spliced into the SQL
    assert execution.execution_parameters == [
        "'JP'' OR 1=1 --'", "3", "DOUBLE '2.5'", "true", "NULL", "DECIMAL '9.99'",
        "DATE '2024-01-31'",
    ]  # fmt: skip
    assert execution.config["OutputLocation"].startswith(f"s3://{BUCKET}/results/")

    default = engine.submit(QueryRequest("SELECT 1"))
    assert fresh.athena_backend.executions[default.execution_id].workgroup.name == "analysts"


def test_glue_catalog_with_a_short_cache(fresh: AwsStandIn, engine: AthenaEngine):
    glue = fresh.client("glue")
    glue.create_database(DatabaseInput={"Name": "sales"})
    glue.create_database(DatabaseInput={"Name": "web"})
    glue.create_table(
        DatabaseName="sales",
        TableInput={
            "Name": "orders",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "order_id", "Type": "bigint"},
                    {"Name": "amount", "Type": "decimal(12,2)"},
                ]
            },
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        },
    )
    catalog = CatalogCache(engine, ttl_seconds=60)
    assert catalog.databases() == ["sales", "web"]
    assert [(t.name, t.type) for t in catalog.tables("sales")] == [("orders", "external_table")]
    columns = [(c.name, c.type) for c in catalog.columns("sales", "orders")]
    assert columns == [("order_id", "bigint"), ("amount", "decimal(12,2)"), ("dt", "string")]

    glue.create_database(DatabaseInput={"Name": "added_later"})
    assert "added_later" not in catalog.databases()  # served from the cache
    catalog.ttl = 0
    assert "added_later" in catalog.databases()
    with pytest.raises(QueryFailed, match="EntityNotFoundException"):
        engine.columns("sales", "missing")


def test_status_checks_survive_a_slow_athena(fresh: AwsStandIn, engine: AthenaEngine):
    """Polling backs off rather than hammering Athena while a query queues."""
    fresh.inject_results([result_set([("n", "integer", 10, 0)], [["5"]])])
    fresh.slow_transitions(6)
    started = time.monotonic()
    assert run(engine).table.to_pylist() == [{"n": 5}]
    polls = fresh.shaping.calls.count("GetQueryExecution")
    assert 12 <= polls <= 14 and time.monotonic() - started < 30
