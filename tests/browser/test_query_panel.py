"""The Athena panel in local mode: browse, query, page, cancel, and take a query to a notebook.

Through the real hub, the real user server and its query API, on DuckDB over the sample
data. Expected values come from DuckDB reading the same sample Parquet files in this test,
never from constants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from kumohub.extensions.query.sample_data import TABLES, ensure_sample_data
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import new_context
from tests.support.hub import RunningHub
from tests.support.lab_page import dismiss_notifications, open_lab, open_main_menu, palette_search

pytestmark = pytest.mark.browser

USER = "alice"
DATABASE = "sales"
REVENUE_BY_COUNTRY = (
    "SELECT country, count(*) AS orders, sum(total_amount) AS revenue\n"
    "FROM {table}\nGROUP BY country ORDER BY revenue DESC"
)
# Bounded (tens of billions of joined rows take minutes), so a failed cancel cannot run forever.
LONG_QUERY = (
    "SELECT count(*) FROM sales.order_items AS i CROSS JOIN sales.customers AS c "
    "WHERE (i.quantity * c.customer_id) % 7 = 3"
)


@pytest.fixture(scope="module")
def sample() -> duckdb.DuckDBPyConnection:
    """DuckDB over the same sample Parquet files the user server queries: the test's oracle."""
    folder = ensure_sample_data()
    db = duckdb.connect(":memory:")
    db.execute(f"CREATE SCHEMA {DATABASE}")
    for table in TABLES:
        # A view body cannot take parameters; the path is the sample folder's, quoted.
        path = str(folder / f"{table}.parquet").replace("'", "''")
        view = f"CREATE VIEW {DATABASE}.{table} AS SELECT * FROM read_parquet('{path}')"  # noqa: S608
        db.execute(view)
    return db


@pytest.fixture(scope="module")
def lab(browser: Browser, hub: RunningHub) -> Iterator[Page]:
    context = new_context(browser)
    page = context.new_page()
    try:
        open_lab(page, hub, USER)
        yield page
    finally:
        context.close()


@pytest.fixture
def panel(lab: Page) -> Locator:
    """The Athena panel, opened from the launcher the first time and brought to front after."""
    panel = lab.locator(".kh-QueryPanel")
    tab = lab.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Athena")
    if tab.count():
        tab.click()
    else:
        open_launcher(lab)
        lab.locator(".jp-LauncherCard", has_text="Athena").click()
    expect(panel).to_be_visible()
    expect(panel.locator(".kh-QueryPanel-run")).to_be_enabled()
    return panel


def open_launcher(page: Page) -> None:
    launcher = page.locator(".jp-Launcher")
    if not launcher.is_visible():
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-addButton").first.click()
    expect(launcher.locator(".jp-LauncherCard").first).to_be_visible()


def write_sql(panel: Locator, sql: str) -> None:
    panel.locator(".cm-content").click()
    panel.page.keyboard.press("Control+A")
    panel.page.keyboard.press("Delete")
    panel.page.keyboard.type(sql)


def grid_header(panel: Locator) -> list[tuple[str, str]]:
    headers = panel.locator(".kh-ResultGrid-grid thead th[data-type]")
    names = headers.locator(".kh-ResultGrid-columnName").all_inner_texts()
    types = headers.locator(".kh-ResultGrid-columnType").all_inner_texts()
    return list(zip(names, types, strict=True))


def grid_rows(panel: Locator) -> list[list[str]]:
    """Cells of the rows on screen, without the row-number column."""
    rows = panel.locator(".kh-ResultGrid-grid tbody tr")
    return [row.locator("td").all_inner_texts()[1:] for row in rows.all()]


def as_text(value: Any) -> str:
    return "NULL" if value is None else str(value)


def query_api(page: Page, path: str) -> Any:
    """GET from the query API as the lab page does (cookie plus the XSRF header)."""
    return page.evaluate(
        """async url => {
            const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)[1];
            const response = await fetch(url, {headers: {'X-XSRFToken': xsrf}});
            return response.json();
        }""",
        f"/user/{USER}/kumohub/query/{path}",
    )


def test_browse_the_catalog_and_run_a_query(
    lab: Page, panel: Locator, sample: duckdb.DuckDBPyConnection, artifacts_dir: Path
) -> None:
    assert "Open Athena Query Panel" in palette_search(lab, "athena", panel.locator(".cm-content"))

    database = panel.locator(".kh-Tree-database", has_text=DATABASE)
    database.locator(".kh-Tree-caret").first.click()
    tables = database.locator(".kh-Tree-table")
    expect(tables).to_have_count(len(TABLES))
    assert sorted(tables.evaluate_all("items => items.map(i => i.dataset.name)")) == sorted(TABLES)
    orders = database.locator(".kh-Tree-table[data-name='orders']")
    orders.locator(".kh-Tree-caret").click()
    schema = pq.read_schema(ensure_sample_data() / "orders.parquet")
    expect(orders.locator(".kh-Tree-column")).to_have_count(len(schema.names))
    assert orders.locator(".kh-Tree-column .kh-Tree-label").all_inner_texts() == schema.names

    # Clicking a table writes its qualified name where the cursor is.
    before, after = REVENUE_BY_COUNTRY.split("{table}")
    write_sql(panel, before)
    orders.locator(".kh-Tree-label").first.click()
    lab.keyboard.type(after)
    sql = REVENUE_BY_COUNTRY.format(table=f"{DATABASE}.orders")
    expect(panel.locator(".cm-content")).to_have_text(sql.replace("\n", ""))

    lab.keyboard.press("Control+Enter")
    expect(panel.locator(".kh-QueryPanel-state")).to_have_text("Succeeded", timeout=60_000)
    expect(panel.locator(".kh-QueryPanel-scanned")).to_have_text(
        re.compile(r"Data scanned [1-9][\d.]* (KB|MB|GB)")
    )
    expected = sample.execute(sql).fetchall()
    expect(panel.locator(".kh-QueryPanel-rows")).to_have_text(f"{len(expected)} rows")
    assert [name for name, _type in grid_header(panel)] == ["country", "orders", "revenue"]
    assert dict(grid_header(panel))["orders"] == "BIGINT"
    assert grid_rows(panel) == [[as_text(v) for v in row] for row in expected]
    expect(panel.locator(".kh-QueryPanel-error")).to_be_hidden()

    latest = panel.locator(".kh-History-item").first
    expect(latest).to_have_attribute("data-state", "SUCCEEDED")
    expect(latest.locator(".kh-History-sql")).to_have_text(sql.split("\n")[0])
    dismiss_notifications(lab)
    lab.screenshot(path=str(artifacts_dir / "query-panel.png"))


def test_results_page_up_to_the_row_cap(
    lab: Page, panel: Locator, sample: duckdb.DuckDBPyConnection
) -> None:
    row_cap = query_api(lab, "engines")["row_cap"]
    total = sample.execute("SELECT count(*) FROM sales.orders").fetchone()[0]
    assert total > row_cap, "the sample data must be larger than the panel's row cap"
    write_sql(panel, "SELECT order_id, status, total_amount FROM sales.orders ORDER BY order_id")
    panel.locator(".kh-QueryPanel-run").click()
    expect(panel.locator(".kh-QueryPanel-state")).to_have_text("Succeeded", timeout=60_000)
    summary = panel.locator(".kh-ResultGrid-summary")
    expect(summary).to_contain_text(f"Rows 1–100 of {row_cap:,}")
    expect(summary).to_contain_text(f"at most {row_cap:,} rows")
    expect(panel.locator(".kh-QueryPanel-rows")).to_have_text(f"{total:,} rows")

    next_page = panel.locator(".kh-ResultGrid-pageButton", has_text="Next")
    previous_page = panel.locator(".kh-ResultGrid-pageButton", has_text="Previous")
    expect(previous_page).to_be_disabled()
    next_page.click()
    expect(summary).to_contain_text(f"Rows 101–200 of {row_cap:,}")
    first_on_page = sample.execute(
        "SELECT order_id, status, total_amount FROM sales.orders ORDER BY order_id "
        "LIMIT 1 OFFSET 100"
    ).fetchone()
    assert grid_rows(panel)[0] == [as_text(v) for v in first_on_page]

    pages = -(-row_cap // 100)
    for _ in range(pages - 2):
        next_page.click()
    expect(summary).to_contain_text(f"Rows {(pages - 1) * 100 + 1:,}–{row_cap:,} of {row_cap:,}")
    expect(next_page).to_be_disabled()
    previous_page.click()
    expect(summary).to_contain_text(f"Rows {(pages - 2) * 100 + 1:,}–")


def test_sql_errors_are_shown_in_words(panel: Locator) -> None:
    write_sql(panel, "SELECT revenue_per_visit FROM sales.orders")
    panel.locator(".kh-QueryPanel-run").click()
    expect(panel.locator(".kh-QueryPanel-state")).to_have_text("Failed", timeout=60_000)
    error = panel.locator(".kh-QueryPanel-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("revenue_per_visit")
    expect(panel.locator(".kh-ResultGrid-empty")).to_have_text("No results.")


def test_cancel_stops_a_long_query(panel: Locator) -> None:
    write_sql(panel, LONG_QUERY)
    panel.locator(".kh-QueryPanel-run").click()
    expect(panel.locator(".kh-QueryPanel-state")).to_have_text("Running", timeout=30_000)
    expect(panel.locator(".kh-QueryPanel-elapsed")).to_have_text(re.compile(r"Elapsed .*\d"))
    expect(panel.locator(".kh-QueryPanel-run")).to_be_disabled()

    panel.locator(".kh-QueryPanel-cancel").click()
    expect(panel.locator(".kh-QueryPanel-state")).to_have_text("Cancelled", timeout=30_000)
    expect(panel.locator(".kh-ResultGrid-empty")).to_have_text("The query was cancelled.")
    expect(panel.locator(".kh-QueryPanel-run")).to_be_enabled()
    expect(panel.locator(".kh-QueryPanel-cancel")).to_be_disabled()
    latest = panel.locator(".kh-History-item").first
    expect(latest).to_have_attribute("data-state", "CANCELLED")


def test_history_reloads_a_query_and_insert_puts_it_into_the_notebook(
    lab: Page, panel: Locator, sample: duckdb.DuckDBPyConnection
) -> None:
    # A notebook with the magics loaded (local mode's images load them by default).
    open_launcher(lab)
    lab.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    notebook = lab.locator(".jp-NotebookPanel:visible")
    expect(lab.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=90_000)
    notebook.locator(".jp-Cell .cm-content").first.click()
    lab.keyboard.type("%load_ext kumohub.magics")
    lab.keyboard.press("Escape")

    # Back in the panel: the first query comes back from the history with one click.
    lab.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Athena").click()
    sql = REVENUE_BY_COUNTRY.format(table=f"{DATABASE}.orders")
    entry = panel.locator(".kh-History-item", has_text=sql.split("\n")[0]).first
    entry.locator(".kh-History-button").click()
    expect(panel.locator(".cm-content")).to_have_text(sql.replace("\n", ""))

    panel.locator(".kh-QueryPanel-insert").click()
    expect(panel).to_be_hidden()
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(2)
    expect(cells.nth(1).locator(".cm-content")).to_have_text(f"%%athena{sql}".replace("\n", ""))
    inserted = cells.nth(1).locator(".cm-line").all_inner_texts()
    assert inserted == ["%%athena", *sql.split("\n")]

    open_main_menu(lab, "Run").locator("[data-command='runmenu:run-all']").click()
    frame = cells.nth(1).locator(".jp-OutputArea-output table.dataframe")
    expect(frame).to_be_visible(timeout=90_000)
    expected = sample.execute(sql).fetchall()
    body = frame.locator("tbody tr")
    expect(body).to_have_count(len(expected))
    first = body.first.locator("td").all_inner_texts()
    assert first[0] == expected[0][0]
    assert int(first[1]) == expected[0][1]
