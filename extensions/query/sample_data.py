"""A deterministic, business-flavoured sample dataset for local mode (DuckDB).

About a million rows over four tables of a small online shop (customers, products, orders,
order_items), generated from a fixed seed with numpy and written as Parquet with pyarrow.
The output folder carries a marker with the generator version: a warm run finds it and
skips the work, a new generator version regenerates.

Run as `python -m kumohub.extensions.query.sample_data [FOLDER]` (the bootstrap step does).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kumohub.settings.query import SAMPLE_DATA_VERSION, default_sample_data_dir

SCHEMA = "sales"
SEED = 20_261_101
MARKER = "_KUMOHUB_SAMPLE_DATA"
TABLES = ("customers", "products", "orders", "order_items")

N_CUSTOMERS = 50_000
N_PRODUCTS = 2_000
N_ORDERS = 300_000

_FIRST = (
    "Aiko",
    "Ben",
    "Carla",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kenji",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amara",
    "Bruno",
    "Chloe",
    "Diego",
)
_LAST = (
    "Tanaka",
    "Schmidt",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Silva",
    "Johansson",
    "Müller",
    "Sato",
    "Fernandez",
    "Dubois",
    "Ivanova",
    "Kim",
    "Patel",
    "Moreau",
    "Novak",
    "Costa",
    "Yamamoto",
    "Berg",
    "Larsen",
    "Ahmed",
)
_COUNTRIES = ("JP", "US", "DE", "GB", "FR", "BR", "IN", "AU", "CA", "KR", "NL", "ES", "SE", "SG")
_COUNTRY_WEIGHTS = (22, 20, 9, 8, 6, 6, 6, 4, 4, 4, 3, 3, 3, 2)
_SEGMENTS = ("consumer", "small-business", "enterprise")
_CATEGORIES = {
    "Electronics": ("Headphones", "Keyboard", "Monitor", "Charger", "Webcam", "Speaker"),
    "Home": ("Kettle", "Lamp", "Blanket", "Mug", "Vase", "Clock"),
    "Outdoor": ("Tent", "Backpack", "Bottle", "Jacket", "Lantern", "Hammock"),
    "Office": ("Notebook", "Pen set", "Desk mat", "Stapler", "Organizer", "Chair"),
    "Kitchen": ("Knife", "Pan", "Cutting board", "Grinder", "Scale", "Teapot"),
    "Toys": ("Puzzle", "Robot kit", "Plush", "Board game", "Kite", "Blocks"),
}
_BRANDS = ("Kumo", "Aozora", "Nordlys", "Atlas", "Pico", "Verde", "Halcyon", "Tessera")
_STATUSES = ("placed", "shipped", "delivered", "returned", "cancelled")
_STATUS_WEIGHTS = (5, 10, 75, 6, 4)
_CHANNELS = ("web", "mobile", "store", "partner")
_CHANNEL_WEIGHTS = (45, 35, 12, 8)
_START = np.datetime64("2023-01-01T00:00:00", "ms")
_END = np.datetime64("2026-01-01T00:00:00", "ms")


def _p(weights: tuple[int, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _decimal(cents: np.ndarray, precision: int, scale: int = 2) -> pa.Array:
    """Exact decimals from integer cents (no float rounding on the way)."""
    values = np.zeros((len(cents), 2), dtype=np.int64)
    values[:, 0] = cents
    values[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(
        pa.decimal128(precision, scale), len(cents), [None, pa.py_buffer(values.tobytes())]
    )


def _strings(values: np.ndarray) -> pa.Array:
    return pa.array(values.tolist(), pa.string())


def _customers(rng: np.random.Generator) -> pa.Table:
    n = N_CUSTOMERS
    ids = np.arange(1, n + 1, dtype=np.int64)
    first = np.asarray(_FIRST)[rng.integers(0, len(_FIRST), n)]
    last = np.asarray(_LAST)[rng.integers(0, len(_LAST), n)]
    names = np.char.add(np.char.add(first, " "), last)
    emails = [
        f"{f.lower()}.{ln.lower()}.{i}@example.com"
        for f, ln, i in zip(first.tolist(), last.tolist(), ids.tolist(), strict=True)
    ]
    signup_days = rng.integers(0, 3 * 365, n)
    signup = np.datetime64("2022-06-01") + signup_days.astype("timedelta64[D]")
    return pa.table(
        {
            "customer_id": pa.array(ids),
            "name": _strings(names),
            "email": pa.array(emails, pa.string()),
            "country": _strings(np.asarray(_COUNTRIES)[rng.choice(14, n, p=_p(_COUNTRY_WEIGHTS))]),
            "segment": _strings(np.asarray(_SEGMENTS)[rng.choice(3, n, p=[0.78, 0.17, 0.05])]),
            "signup_date": pa.array(signup.astype("datetime64[D]"), pa.date32()),
            "is_active": pa.array(rng.random(n) < 0.86),
        }
    )


def _products(rng: np.random.Generator) -> pa.Table:
    n = N_PRODUCTS
    categories = list(_CATEGORIES)
    category_idx = rng.integers(0, len(categories), n)
    names, skus = [], []
    brands = np.asarray(_BRANDS)[rng.integers(0, len(_BRANDS), n)]
    for i, (cat, brand) in enumerate(zip(category_idx.tolist(), brands.tolist(), strict=True)):
        kind = _CATEGORIES[categories[cat]][i % 6]
        names.append(f"{brand} {kind} {100 + i}")
        skus.append(f"{categories[cat][:3].upper()}-{i + 1:05d}")
    price_cents = (np.round(np.exp(rng.normal(3.4, 0.9, n)), 0) * 100 - 1).astype(np.int64)
    price_cents = np.clip(price_cents, 199, 250_000)
    cost_cents = (price_cents * rng.uniform(0.35, 0.7, n)).astype(np.int64)
    launched = np.datetime64("2019-01-01") + rng.integers(0, 6 * 365, n).astype("timedelta64[D]")
    return pa.table(
        {
            "product_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "sku": pa.array(skus, pa.string()),
            "name": pa.array(names, pa.string()),
            "category": _strings(np.asarray(categories)[category_idx]),
            "brand": _strings(brands),
            "unit_price": _decimal(price_cents, 10),
            "unit_cost": _decimal(cost_cents, 10),
            "launched_on": pa.array(launched.astype("datetime64[D]"), pa.date32()),
            "discontinued": pa.array(rng.random(n) < 0.07),
        }
    )


def _orders_and_items(
    rng: np.random.Generator, customers: pa.Table, products: pa.Table
) -> tuple[pa.Table, pa.Table]:
    n = N_ORDERS
    order_ids = np.arange(1, n + 1, dtype=np.int64)
    # Some customers order far more often than others.
    weights = rng.pareto(1.6, N_CUSTOMERS) + 0.2
    customer_ids = rng.choice(N_CUSTOMERS, n, p=weights / weights.sum()).astype(np.int64) + 1
    span = (_END - _START).astype(np.int64)
    order_ts = np.sort(_START + rng.integers(0, span, n).astype("timedelta64[ms]"))
    items_per_order = rng.choice([1, 2, 3, 4, 5, 6], n, p=[0.32, 0.27, 0.18, 0.12, 0.07, 0.04])
    n_items = int(items_per_order.sum())

    item_order = np.repeat(order_ids, items_per_order)
    starts = np.repeat(np.cumsum(items_per_order) - items_per_order, items_per_order)
    line_no = (np.arange(n_items) - starts + 1).astype(np.int32)
    popularity = rng.zipf(1.3, N_PRODUCTS).astype(float)
    product_ids = rng.choice(N_PRODUCTS, n_items, p=popularity / popularity.sum()) + 1
    price_cents = (
        (products.column("unit_price").cast(pa.float64()).to_numpy() * 100)
        .round()
        .astype(np.int64)[product_ids - 1]
    )
    quantity = rng.choice([1, 1, 1, 2, 2, 3, 4, 6], n_items).astype(np.int32)
    discount = np.where(rng.random(n_items) < 0.18, rng.choice([0.05, 0.1, 0.15, 0.25], n_items), 0)
    line_cents = np.round(price_cents * quantity * (1 - discount)).astype(np.int64)
    items = pa.table(
        {
            "order_id": pa.array(item_order),
            "line_no": pa.array(line_no),
            "product_id": pa.array(product_ids.astype(np.int64)),
            "quantity": pa.array(quantity),
            "unit_price": _decimal(price_cents, 10),
            "discount": pa.array(discount.astype(np.float64)),
            "line_total": _decimal(line_cents, 12),
        }
    )

    subtotal = np.bincount(item_order - 1, weights=line_cents, minlength=n).astype(np.int64)
    shipping = np.where(subtotal > 5_000, 0, rng.choice([399, 499, 699], n)).astype(np.int64)
    countries = customers.column("country").to_numpy(zero_copy_only=False)[customer_ids - 1]
    status = np.asarray(_STATUSES)[rng.choice(5, n, p=_p(_STATUS_WEIGHTS))]
    # Recent orders are still on their way.
    recent = order_ts > (_END - np.timedelta64(10, "D"))
    status = np.where(recent & (status == "delivered"), "shipped", status)
    coupon = np.where(rng.random(n) < 0.12, "WELCOME10", None)
    orders = pa.table(
        {
            "order_id": pa.array(order_ids),
            "customer_id": pa.array(customer_ids),
            "ordered_at": pa.array(order_ts, pa.timestamp("ms")),
            "status": _strings(status),
            "channel": _strings(np.asarray(_CHANNELS)[rng.choice(4, n, p=_p(_CHANNEL_WEIGHTS))]),
            "country": _strings(countries),
            "item_count": pa.array(items_per_order.astype(np.int32)),
            "shipping_cost": _decimal(shipping, 8),
            "total_amount": _decimal(subtotal + shipping, 12),
            "coupon_code": pa.array(coupon.tolist(), pa.string()),
        }
    )
    return orders, items


def generate(folder: Path) -> dict[str, int]:
    """Write every table as `<folder>/<table>.parquet`; return the row counts."""
    rng = np.random.default_rng(SEED)
    customers = _customers(rng)
    products = _products(rng)
    orders, items = _orders_and_items(rng, customers, products)
    counts = {}
    for name, table in zip(TABLES, (customers, products, orders, items), strict=True):
        pq.write_table(
            table, folder / f"{name}.parquet", compression="zstd", row_group_size=131_072
        )
        counts[name] = table.num_rows
    return counts


def is_current(folder: Path) -> bool:
    marker = folder / MARKER
    return marker.is_file() and marker.read_text().strip() == SAMPLE_DATA_VERSION


def ensure_sample_data(folder: Path | None = None) -> Path:
    """The dataset's folder, generated first unless this generator version is already there."""
    folder = Path(folder or default_sample_data_dir())
    if is_current(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one generator at a time; the others wait for it
        if is_current(folder):
            return folder
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        staging.chmod(0o755)
        try:
            generate(staging)
            (staging / MARKER).write_text(SAMPLE_DATA_VERSION + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(staging)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = Path(args.folder or default_sample_data_dir())
    if is_current(folder):
        print(f"sample data {SAMPLE_DATA_VERSION} already in {folder}")
        return 0
    ensure_sample_data(folder)
    print(f"sample data {SAMPLE_DATA_VERSION} written to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
