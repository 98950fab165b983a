"""`%%athena` / `%athena` in a real IPython kernel (jupyter_client), against DuckDB."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from jupyter_client.manager import KernelManager
from kumohub.extensions.query.sample_data import ensure_sample_data

from kumohub.server_settings import ENV_VAR

ENDLESS = "SELECT sum(a.range * b.range) AS s FROM range(200000) a, range(200000) b"


class Kernel:
    """A started kernel and a way to run a cell and collect what it showed."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 120, on_message: Any = None) -> dict[str, Any]:
        msg_id = self.client.execute(code)
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                raise TimeoutError(f"cell did not finish in {timeout}s: {code[:60]!r}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if on_message:
                on_message(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        while True:
            reply = self.client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return {"reply": reply["content"], "messages": messages}

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def texts(outcome: dict[str, Any]) -> str:
    """Everything a user would read under the cell."""
    parts = []
    for msg in outcome["messages"]:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            parts.append(content["text"])
        elif msg["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            parts.append(content["data"].get("text/plain", ""))
        elif msg["msg_type"] == "error":
            parts.append("\n".join(content["traceback"]))
    return "\n".join(parts)


def value(kernel: Kernel, expression: str) -> Any:
    outcome = kernel.run(f"import json as _j; print(_j.dumps({expression}, default=str))")
    assert outcome["reply"]["status"] == "ok", texts(outcome)
    out = [m["content"]["text"] for m in outcome["messages"] if m["msg_type"] == "stream"]
    return json.loads("".join(out))


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return ensure_sample_data()


@pytest.fixture(scope="module")
def kernel(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    home = tmp_path_factory.mktemp("kernel-home")
    settings = {"user": "alice", "query": {"duckdb": {"data_dir": str(data_dir)}}}
    env = dict(os.environ, HOME=str(home), **{ENV_VAR: json.dumps(settings)})
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(home))
    started = Kernel(manager)
    try:
        yield started
    finally:
        started.stop()


def test_every_kernel_has_the_magics_without_load_ext(kernel: Kernel):
    # The environment's etc/ipython/ipython_config.py loads them (bootstrap and images).
    magics = value(kernel, "sorted(get_ipython().magics_manager.magics['cell'])")
    assert "athena" in magics
    assert "athena" in value(kernel, "sorted(get_ipython().magics_manager.magics['line'])")


def test_cell_magic_returns_a_typed_dataframe(kernel: Kernel, data_dir: Path):
    kernel.run("country = 'JP'\nsince = __import__('datetime').datetime(2025, 1, 1)")
    outcome = kernel.run(
        "%%athena -o jp_orders\n"
        "SELECT order_id, customer_id, ordered_at, total_amount, coupon_code,\n"
        "       item_count, status = 'delivered' AS delivered\n"
        "FROM sales.orders\n"
        "WHERE country = :country AND ordered_at >= :since -- :not_a_parameter\n"
        "ORDER BY order_id"
    )
    assert outcome["reply"]["status"] == "ok", texts(outcome)
    shown = texts(outcome)
    assert "duckdb: QUEUED" in shown or "duckdb: RUNNING" in shown
    assert "duckdb: SUCCEEDED" in shown and "MB scanned" in shown

    orders = pq.read_table(data_dir / "orders.parquet")
    mask = pc.and_(
        pc.equal(orders["country"], "JP"),
        pc.greater_equal(orders["ordered_at"], pc.strptime("2025-01-01", "%Y-%m-%d", "ms")),
    )
    expected = orders.filter(mask)
    assert value(kernel, "len(jp_orders)") == expected.num_rows
    assert f"{expected.num_rows:,} rows" in shown
    assert value(kernel, "str(jp_orders['total_amount'].sum())") == str(
        pc.sum(expected["total_amount"]).as_py()
    )
    dtypes = value(kernel, "{k: str(v) for k, v in jp_orders.dtypes.items()}")
    assert dtypes["order_id"] == "Int64" and dtypes["item_count"] == "Int32"
    assert dtypes["delivered"] == "boolean"
    assert dtypes["ordered_at"].startswith("datetime64")
    assert dtypes["total_amount"].startswith("decimal128(12, 2)")
    assert dtypes["coupon_code"] in ("str", "string")
    assert value(kernel, "int(jp_orders['coupon_code'].isna().sum())") == (
        expected["coupon_code"].null_count
    )


def test_line_magic_and_positional_parameters(kernel: Kernel):
    kernel.run("segment = 'enterprise'")
    outcome = kernel.run(
        "%athena -p segment -o n SELECT count(*) AS n FROM customers WHERE segment = ?"
    )
    assert outcome["reply"]["status"] == "ok", texts(outcome)
    results = [m for m in outcome["messages"] if m["msg_type"] == "execute_result"]
    assert results and "n" in results[0]["content"]["data"]["text/plain"]
    assert value(kernel, "int(n['n'][0])") > 0
    hostile = kernel.run(
        "segment = \"enterprise' OR '1'='1\"\n"
        "%athena -o m SELECT count(*) AS n FROM customers WHERE segment = :segment"
    )
    assert hostile["reply"]["status"] == "ok", texts(hostile)
    assert value(kernel, "int(m['n'][0])") == 0


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("ids = [1, 2]\n%athena SELECT :ids", "parameter 'ids' is a list"),
        ("%athena --engine bigquery SELECT 1", "unknown engine 'bigquery'"),
        ("%athena --workgroup finance SELECT 1", "unknown workgroup 'finance'"),
        ("%athena SELECT :nowhere_defined", "'nowhere_defined' is not defined"),
        ("%athena SELECT * FROM no_such_table", "QueryFailed: Catalog Error"),
        ("%athena SELEC 1", "QueryFailed: Parser Error"),
        ("%%athena\n   ", "the query is empty"),
    ],
)
def test_bad_input_is_a_clear_one_line_error(kernel: Kernel, cell: str, message: str):
    outcome = kernel.run(cell, timeout=60)
    assert outcome["reply"]["status"] == "error"
    shown = texts(outcome)
    assert message in shown, shown
    assert "Traceback" not in shown


def test_interrupt_cancels_the_query_on_the_engine(kernel: Kernel):
    running = {"seen": False}

    def watch(msg: dict[str, Any]) -> None:
        shown = msg["content"].get("data", {}).get("text/plain", "")
        if "RUNNING" in shown and not running["seen"]:
            running["seen"] = True
            kernel.manager.interrupt_kernel()

    started = time.monotonic()
    outcome = kernel.run(f"%athena {ENDLESS}", timeout=90, on_message=watch)
    assert running["seen"], texts(outcome)
    assert outcome["reply"]["status"] == "error"
    assert outcome["reply"]["ename"] == "KeyboardInterrupt"
    assert "Query cancelled on duckdb." in texts(outcome)
    assert time.monotonic() - started < 60
    # The query really stopped: no waiter left behind, and the kernel answers at once.
    magics = "get_ipython().magics_manager.registry['QueryMagics']"
    assert value(kernel, f"{magics}.last_run.state") == "CANCELLED"
    waiting = "[t.name for t in __import__('threading').enumerate() if 'kumohub' in t.name]"
    assert value(kernel, waiting) == []
    quick = kernel.run("%athena -o one SELECT 1 AS x", timeout=30)
    assert quick["reply"]["status"] == "ok", texts(quick)
