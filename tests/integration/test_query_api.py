"""The query REST API in a real user server, through the real hub and proxy (local mode)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from kumohub.extensions.query.sample_data import ensure_sample_data

from tests.support.client import HubClient
from tests.support.hub import USER_PASSWORD, RunningHub, start_hub

ENDLESS = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"
ROW_CAP = 500
SCAN_LIMIT = 5_000_000  # orders alone fit; orders joined with order_items do not
API = "kumohub/query"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return ensure_sample_data()


@pytest.fixture(scope="module")
def query_hub(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RunningHub]:
    overrides = {
        "query": {
            "engine": "duckdb",
            "panel_row_cap": ROW_CAP,
            "bytes_scanned_limit": SCAN_LIMIT,
            "athena": {
                "output_location": "s3://kumohub-athena-results/",
                "default_workgroup": "primary",
                "workgroups_by_group": {"data-science": "analysts", "ml-platform": "platform"},
            },
        }
    }
    with start_hub(tmp_path_factory.mktemp("query-hub"), overrides) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(query_hub: RunningHub) -> Iterator[HubClient]:
    client = query_hub.client()
    assert client.login("alice", USER_PASSWORD).status_code == 302
    assert client.api_spawn({"profile": "cpu-small", "image": "datascience"}).status_code in (
        201,
        202,
    )
    client.wait_ready(timeout=120)
    assert client.open_server().status_code == 200
    yield client
    client.stop()
    client.wait_stopped()


def call(client: HubClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = client.server_api(method, f"{API}/{path}", **kwargs)
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:300]
    assert "Content-Disposition" not in response.headers
    return response.status_code, response.json()


def submit(client: HubClient, sql: str, **fields: Any) -> str:
    status, body = call(client, "POST", "queries", json={"sql": sql, **fields})
    assert status == 201, body
    assert body["state"] in ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
    return body["id"]


def wait_for(client: HubClient, query_id: str, states: tuple[str, ...], timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = call(client, "GET", f"queries/{query_id}")
        assert status == 200, body
        if body["state"] in states:
            return body
        time.sleep(0.2)
    raise TimeoutError(f"query {query_id} not in {states}: {body}")


def test_engines_and_workgroups_follow_the_users_groups(alice: HubClient):
    status, body = call(alice, "GET", "engines")
    assert status == 200
    assert body == {
        "engines": ["duckdb", "athena"],
        "default": "duckdb",
        "workgroups": ["analysts"],  # alice is in data-science only
        "default_workgroup": "analysts",
        "row_cap": ROW_CAP,
        "bytes_scanned_limit": SCAN_LIMIT,
    }


def test_run_a_query_and_page_through_json_results(alice: HubClient, data_dir: Path):
    query_id = submit(
        alice,
        "SELECT country, count(*) AS orders, sum(total_amount) AS revenue, "
        "min(ordered_at) AS first_order FROM orders WHERE status = ? "
        "GROUP BY country ORDER BY country",
        parameters=["returned"],
    )
    done = wait_for(alice, query_id, ("SUCCEEDED", "FAILED", "CANCELLED"))
    assert done["state"] == "SUCCEEDED", done["error"]
    assert done["engine"] == "duckdb" and done["error"] is None
    assert done["bytes_scanned"] == (data_dir / "orders.parquet").stat().st_size
    assert [c["name"] for c in done["columns"]] == ["country", "orders", "revenue", "first_order"]
    assert done["columns"][2]["type"].startswith("DECIMAL")

    orders = pq.read_table(data_dir / "orders.parquet")
    returned = orders.filter(pc.equal(orders["status"], "returned"))
    expected = {
        row["country"]: row["order_id_count"]
        for row in returned.group_by("country").aggregate([("order_id", "count")]).to_pylist()
    }
    assert done["row_count"] == len(expected)

    status, page = call(alice, "GET", f"queries/{query_id}/results?offset=0&limit=100")
    assert status == 200
    assert page["total_rows"] == len(expected) and page["truncated"] is False
    assert {row[0]: row[1] for row in page["rows"]} == expected
    revenue = sum(float(row[2]) for row in page["rows"])
    assert abs(revenue - float(pc.sum(returned["total_amount"]).as_py())) < 0.01
    assert all(isinstance(row[2], str) and "T" in row[3] for row in page["rows"])


def test_row_cap_and_paging(alice: HubClient):
    query_id = submit(alice, "SELECT * FROM order_items ORDER BY order_id, line_no LIMIT 2000")
    done = wait_for(alice, query_id, ("SUCCEEDED", "FAILED"))
    assert done["state"] == "SUCCEEDED" and done["row_count"] == 2000
    status, page = call(alice, "GET", f"queries/{query_id}/results?offset=450&limit=100")
    assert status == 200
    assert page["total_rows"] == ROW_CAP and page["truncated"] is True
    assert len(page["rows"]) == ROW_CAP - 450 and page["offset"] == 450
    status, bad = call(alice, "GET", f"queries/{query_id}/results?limit=lots")
    assert status == 400 and "limit" in bad["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"sql": "SELECT 1", "engine": "bigquery"}, "unknown engine 'bigquery'"),
        ({"sql": "SELECT 1", "workgroup": "platform"}, "unknown workgroup 'platform'"),
        ({"sql": "SELECT ?", "parameters": [[1, 2]]}, "parameter 1 is a list"),
        ({"sql": "SELECT ?", "parameters": "x"}, "'parameters' must be a list"),
        ({"sql": "   "}, "the query is empty"),
        ({}, "the query is empty"),
    ],
)
def test_bad_requests_are_400_with_a_message(alice: HubClient, body: dict, message: str):
    status, reply = call(alice, "POST", "queries", json=body)
    assert status == 400
    assert message in reply["message"]


def test_failures_carry_the_engines_reason(alice: HubClient):
    status, reply = call(alice, "POST", "queries", data=b"{not json")
    assert status == 400 and "JSON" in reply["message"]
    status, reply = call(alice, "GET", "queries/0123456789abcdef")
    assert status == 404 and "no query" in reply["message"]

    broken = submit(alice, "SELECT * FROM no_such_table")
    failed = wait_for(alice, broken, ("SUCCEEDED", "FAILED"))
    assert failed["state"] == "FAILED" and "no_such_table" in failed["error"]
    status, reply = call(alice, "GET", f"queries/{broken}/results")
    assert status == 409 and "FAILED" in reply["message"]

    too_big = submit(
        alice, "SELECT count(*) FROM orders JOIN order_items USING (order_id)", engine="duckdb"
    )
    refused = wait_for(alice, too_big, ("SUCCEEDED", "FAILED"))
    assert refused["state"] == "FAILED"
    assert "over the limit of 5.0 MB" in refused["error"]


def test_cancel_stops_a_running_query(alice: HubClient):
    query_id = submit(alice, ENDLESS)
    wait_for(alice, query_id, ("RUNNING",))
    status, reply = call(alice, "DELETE", f"queries/{query_id}")
    assert status == 202 and reply["id"] == query_id
    cancelled = wait_for(alice, query_id, ("CANCELLED", "FAILED", "SUCCEEDED"), timeout=30)
    assert cancelled["state"] == "CANCELLED"
    assert cancelled["elapsed_ms"] < 30_000


def test_catalog_tree(alice: HubClient, data_dir: Path):
    status, body = call(alice, "GET", "catalog")
    assert status == 200 and body["engine"] == "duckdb"
    assert body["databases"] == [{"name": "sales"}]
    status, body = call(alice, "GET", "catalog/sales")
    assert [t["name"] for t in body["tables"]] == [
        "customers",
        "order_items",
        "orders",
        "products",
    ]
    status, body = call(alice, "GET", "catalog/sales/customers")
    names = [c["name"] for c in body["columns"]]
    assert names == pq.read_schema(data_dir / "customers.parquet").names
    status, body = call(alice, "GET", "catalog/sales/nope")
    assert status == 404 and "unknown table" in body["message"]


def test_history_is_newest_first_and_kept_in_the_home(alice: HubClient, query_hub: RunningHub):
    first = submit(alice, "SELECT 1 AS one")
    wait_for(alice, first, ("SUCCEEDED",))
    second = submit(alice, "SELECT 2 AS two")
    wait_for(alice, second, ("SUCCEEDED",))
    status, body = call(alice, "GET", "history")
    assert status == 200
    items = body["items"]
    assert [item["id"] for item in items[:2]] == [second, first]
    assert items[0]["sql"] == "SELECT 2 AS two" and items[0]["state"] == "SUCCEEDED"
    assert set(items[0]) >= {"engine", "workgroup", "duration_ms", "bytes_scanned", "submitted"}
    stored = query_hub.state / "home" / "alice" / ".local/share/kumohub/query-history.jsonl"
    lines = [json.loads(line) for line in stored.read_text().splitlines()]
    assert lines[-1]["id"] == second


def test_api_is_authenticated_and_xsrf_checked(alice: HubClient, query_hub: RunningHub):
    url = f"{query_hub.url}{alice.server_prefix()}{API}/queries"
    no_xsrf = alice.session.post(url, json={"sql": "SELECT 1"}, timeout=30)
    assert no_xsrf.status_code == 403
    stranger = query_hub.client().session.get(
        f"{query_hub.url}{alice.server_prefix()}{API}/engines", timeout=30, allow_redirects=False
    )
    assert stranger.status_code in (302, 403)
    assert "engines" not in stranger.text
