"""The DuckDB engine over the generated sample data, the query service and the SQL helpers.

Expected values are computed independently from the Parquet files with pyarrow, never
hard-coded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from kumohub.extensions.query.dataframe import to_dataframe
from kumohub.extensions.query.duckdb_engine import DuckDBEngine
from kumohub.extensions.query.engine import (
    InvalidQuery,
    QueryCancelled,
    QueryFailed,
    QueryRequest,
    ScanLimitExceeded,
)
from kumohub.extensions.query.engines import EngineRegistry
from kumohub.extensions.query.history import HistoryStore
from kumohub.extensions.query.json_rows import json_rows
from kumohub.extensions.query.placeholders import bind
from kumohub.extensions.query.sample_data import TABLES, ensure_sample_data, generate
from kumohub.extensions.query.service import QueryService, ResultsUnavailable, UnknownQuery

from kumohub.server_settings import ServerSettings
from kumohub.settings import QuerySettings

# Cross join big enough to run for minutes unless it is interrupted.
ENDLESS = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return ensure_sample_data()


@pytest.fixture(scope="module")
def engine(data_dir: Path) -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine(data_dir)
    yield engine
    engine.close()


def run(engine: DuckDBEngine, sql: str, *params: object) -> pa.Table:
    return engine.submit(QueryRequest(sql, tuple(params))).wait().table


def test_sample_data_is_a_realistic_deterministic_million_rows(data_dir: Path, tmp_path: Path):
    tables = {name: pq.read_table(data_dir / f"{name}.parquet") for name in TABLES}
    assert 900_000 <= sum(t.num_rows for t in tables.values()) <= 1_300_000
    orders, items = tables["orders"], tables["order_items"]
    # Every order line points at a real order and product; totals add up.
    assert pc.all(pc.is_in(items["order_id"], orders["order_id"])).as_py()
    assert pc.all(pc.is_in(items["product_id"], tables["products"]["product_id"])).as_py()
    assert pc.all(pc.is_in(orders["customer_id"], tables["customers"]["customer_id"])).as_py()
    assert orders.schema.field("total_amount").type == pa.decimal128(12, 2)
    assert orders["coupon_code"].null_count > 0

    generate(tmp_path)  # the same generator again gives the same data
    for name in TABLES:
        assert pq.read_table(tmp_path / f"{name}.parquet").equals(tables[name])


def test_warm_setup_skips_generation(data_dir: Path):
    before = {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()}
    started = time.monotonic()
    assert ensure_sample_data(data_dir) == data_dir
    assert time.monotonic() - started < 1
    assert {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()} == before


def test_aggregate_matches_the_parquet_files(engine: DuckDBEngine, data_dir: Path):
    result = engine.submit(
        QueryRequest(
            "SELECT country, count(*) AS orders, sum(total_amount) AS revenue "
            "FROM sales.orders WHERE status = ? GROUP BY country ORDER BY country",
            ("delivered",),
        )
    ).wait()
    orders = pq.read_table(data_dir / "orders.parquet")
    delivered = orders.filter(pc.equal(orders["status"], "delivered"))
    expected = delivered.group_by("country").aggregate([("order_id", "count")])
    expected_counts = dict(zip(*expected.to_pydict().values(), strict=True))
    got = result.table.to_pydict()
    counts = dict(zip(got["country"], got["orders"], strict=True))
    assert counts == {c: expected_counts[c] for c in sorted(expected_counts)}
    revenue = sum(got["revenue"], decimal.Decimal(0))
    assert revenue == pc.sum(delivered["total_amount"]).as_py()
    assert [c.type for c in result.columns] == ["VARCHAR", "BIGINT", "DECIMAL(38,2)"]
    assert result.bytes_scanned == (data_dir / "orders.parquet").stat().st_size


def test_bytes_scanned_counts_each_table_named(engine: DuckDBEngine, data_dir: Path):
    sql = (
        "SELECT p.category, sum(i.quantity) FROM order_items i "
        "JOIN products p USING (product_id) GROUP BY 1"
    )
    expected = sum((data_dir / f"{t}.parquet").stat().st_size for t in ("order_items", "products"))
    assert engine.submit(QueryRequest(sql)).wait().bytes_scanned == expected
    assert engine.submit(QueryRequest("SELECT 'orders' AS word")).wait().bytes_scanned == 0


def test_parameters_are_bound_not_spliced(engine: DuckDBEngine):
    hostile = "JP' OR '1'='1"
    assert (
        run(engine, "SELECT count(*) AS n FROM orders WHERE country = ?", hostile)["n"][0].as_py()
        == 0
    )
    jp = run(engine, "SELECT count(*) AS n FROM orders WHERE country = ?", "JP")["n"][0].as_py()
    assert jp > 0
    since = dt.datetime(2025, 6, 1)
    later = run(engine, "SELECT count(*) AS n FROM orders WHERE ordered_at >= ?", since)
    assert 0 < later["n"][0].as_py() < 300_000
    typed = run(
        engine, "SELECT ? AS d, ? AS x, ? AS b, ? AS z", dt.date(2024, 2, 29), 1.5, True, None
    )
    assert typed.to_pylist() == [{"d": dt.date(2024, 2, 29), "x": 1.5, "b": True, "z": None}]


def test_bad_input_gets_clear_errors(engine: DuckDBEngine):
    with pytest.raises(InvalidQuery, match="empty"):
        engine.submit(QueryRequest("  ;  "))
    with pytest.raises(InvalidQuery, match="parameter 1 is a list"):
        engine.submit(QueryRequest("SELECT ?", ([1, 2],)))  # type: ignore[arg-type]
    with pytest.raises(QueryFailed, match="nothing_here"):
        engine.submit(QueryRequest("SELECT * FROM nothing_here")).wait()
    with pytest.raises(QueryFailed, match=r"(?i)syntax"):
        engine.submit(QueryRequest("SELEC 1")).wait()


def test_scan_ceiling_refuses_big_queries(data_dir: Path):
    size = (data_dir / "orders.parquet").stat().st_size
    limited = DuckDBEngine(data_dir, bytes_scanned_limit=size - 1)
    try:
        with pytest.raises(ScanLimitExceeded, match="over the limit"):
            limited.submit(QueryRequest("SELECT count(*) FROM orders"))
        small = limited.submit(QueryRequest("SELECT count(*) AS n FROM products")).wait()
        assert small.table["n"][0].as_py() == 2000
    finally:
        limited.close()


def test_cancel_interrupts_a_running_query(engine: DuckDBEngine):
    query = engine.submit(QueryRequest(ENDLESS))
    threading.Timer(0.5, query.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelled):
        query.wait()
    assert time.monotonic() - started < 10
    # The engine stays usable.
    assert run(engine, "SELECT 42 AS x")["x"][0].as_py() == 42


def test_catalog_from_information_schema(engine: DuckDBEngine, data_dir: Path):
    assert engine.databases() == ["sales"]
    assert [t.name for t in engine.tables("sales")] == sorted(TABLES)
    columns = {c.name: c.type for c in engine.columns("sales", "products")}
    schema = pq.read_schema(data_dir / "products.parquet")
    assert list(columns) == schema.names
    assert columns["unit_price"] == "DECIMAL(10,2)" and columns["launched_on"] == "DATE"
    with pytest.raises(InvalidQuery, match="unknown table"):
        engine.columns("sales", "nope")


def test_dataframe_dtypes_follow_the_sql_types(engine: DuckDBEngine):
    table = run(
        engine,
        "SELECT customer_id, is_active, signup_date, name, "
        "CAST(NULL AS BIGINT) AS missing, CAST(1.25 AS DECIMAL(10,2)) AS price, "
        "TIMESTAMP '2024-01-02 03:04:05' AS ts FROM customers LIMIT 3",
    )
    frame = to_dataframe(table)
    assert frame["customer_id"].dtype == pd.Int64Dtype()
    assert frame["missing"].dtype == pd.Int64Dtype() and frame["missing"].isna().all()
    assert frame["is_active"].dtype == pd.BooleanDtype()
    assert str(frame["signup_date"].dtype).startswith("datetime64")
    assert str(frame["ts"].dtype).startswith("datetime64")
    assert pd.api.types.is_string_dtype(frame["name"].dtype)
    assert frame["price"].iloc[0] == decimal.Decimal("1.25")


def test_json_rows_are_json_safe():
    table = pa.table(
        {
            "f": pa.array([math.nan, 1.5, None]),
            "d": pa.array([decimal.Decimal("1.10"), None, decimal.Decimal("-2")]),
            "t": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5), None, None]),
            "day": pa.array([dt.date(2024, 1, 2), None, None]),
            "l": pa.array([[1, 2], None, []]),
        }
    )
    assert json_rows(table) == [
        [None, "1.10", "2024-01-02T03:04:05", "2024-01-02", [1, 2]],
        [1.5, None, None, None, None],
        [None, "-2.00", None, None, []],
    ]


def test_placeholders_skip_literals_comments_and_casts():
    sql = (
        "SELECT ':not_me', x::int, a[1:b] -- :nor_me\n"
        "FROM t WHERE c = :country AND d >= :since /* :skip */"
    )
    rewritten, values = bind(sql, {"country": "JP", "since": 3})
    assert values == [("country", "JP"), ("since", 3)]
    assert rewritten.count("?") == 2 and ":not_me" in rewritten and "x::int" in rewritten
    with pytest.raises(InvalidQuery, match="not defined"):
        bind("SELECT :missing", {})
    with pytest.raises(InvalidQuery, match="2 -p"):
        bind("SELECT ?", {"a": 1, "b": 2}, ["a", "b"])


# -- the service, as the REST handlers use it ------------------------------------------------


@pytest.fixture
def service(data_dir: Path, tmp_path: Path) -> Iterator[QueryService]:
    query = QuerySettings.model_validate(
        {"duckdb": {"data_dir": str(data_dir)}, "panel_row_cap": 250}
    )
    settings = ServerSettings(user="alice", query=query)
    service = QueryService(
        settings, EngineRegistry(settings), HistoryStore(tmp_path / "history.jsonl", 5)
    )
    yield service
    service.close()


def finished(service: QueryService, query_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = service.get(query_id).status()
        if status["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return status
        time.sleep(0.05)
    raise TimeoutError(query_id)


def test_service_runs_pages_caps_and_remembers(service: QueryService, tmp_path: Path):
    record = service.submit("SELECT order_id, total_amount FROM orders ORDER BY order_id LIMIT 300")
    status = finished(service, record.id)
    assert status["state"] == "SUCCEEDED" and status["row_count"] == 300
    page = service.results(record.id, 240, 100)
    assert page["total_rows"] == 250 and page["truncated"] is True
    assert [row[0] for row in page["rows"]] == list(range(241, 251))
    assert isinstance(page["rows"][0][1], str)  # decimals travel as exact strings

    failed = finished(service, service.submit("SELECT * FROM nowhere").id)
    assert failed["state"] == "FAILED" and "nowhere" in failed["error"]
    with pytest.raises(ResultsUnavailable, match="FAILED"):
        service.results(failed["id"], 0, 10)
    with pytest.raises(UnknownQuery):
        service.get("does-not-exist")

    history = service.history.items()
    assert [item["id"] for item in history] == [failed["id"], record.id]
    assert history[1]["bytes_scanned"] > 0 and history[1]["duration_ms"] >= 0
    assert (tmp_path / "history.jsonl").exists()


def test_service_cancel_and_input_checks(service: QueryService):
    record = service.submit(ENDLESS)
    deadline = time.monotonic() + 20
    while service.get(record.id).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    service.cancel(record.id)
    assert finished(service, record.id, timeout=15)["state"] == "CANCELLED"

    with pytest.raises(InvalidQuery, match="unknown engine"):
        service.submit("SELECT 1", engine="bigquery")
    with pytest.raises(InvalidQuery, match="unknown workgroup"):
        service.submit("SELECT 1", workgroup="finance")
    with pytest.raises(InvalidQuery, match="parameter 1 is a dict"):
        service.submit("SELECT ?", parameters=[{"a": 1}])
    with pytest.raises(InvalidQuery, match="empty"):
        service.submit("")
