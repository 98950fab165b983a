"""A short-lived cache in front of an engine's catalog (Glue or information_schema).

The panel's catalog tree asks the same questions again and again while a user browses;
Glue calls are slow and rate-limited, so answers are reused for a short while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .engine import Column, QueryEngine, TableInfo

T = TypeVar("T")


class CatalogCache:
    def __init__(self, engine: QueryEngine, ttl_seconds: float) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self._entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def databases(self) -> list[str]:
        return self._cached(("databases",), self.engine.databases)

    def tables(self, database: str) -> list[TableInfo]:
        return self._cached(("tables", database), lambda: self.engine.tables(database))

    def columns(self, database: str, table: str) -> list[Column]:
        return self._cached(
            ("columns", database, table), lambda: self.engine.columns(database, table)
        )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
