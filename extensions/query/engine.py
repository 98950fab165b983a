"""The engine interface every query engine implements, and the vocabulary around it.

The service (REST API) and the magics drive engines the same way: `submit` checks the
request and starts the query, `RunningQuery.wait` blocks until it ends (reporting progress),
and `RunningQuery.cancel` may be called from any other thread to stop it on the engine.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

State = Literal["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
FINAL_STATES: frozenset[str] = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})

Scalar = None | bool | int | float | str | decimal.Decimal | dt.date | dt.datetime
SCALAR_TYPES = (bool, int, float, str, decimal.Decimal, dt.date, dt.datetime)
SCALAR_NAMES = "str, int, float, bool, Decimal, date, datetime or None"


class QueryError(Exception):
    """A query could not run or did not succeed; the message is meant for the user."""

    state: State = "FAILED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidQuery(QueryError):
    """The request itself is wrong (empty SQL, unknown workgroup, bad parameter type)."""


class QueryFailed(QueryError):
    """The engine ran the query and reported a failure (with the engine's reason)."""


class ScanLimitExceeded(QueryFailed):
    """The query would scan, or did scan, more than the platform's bytes-scanned ceiling."""


class QueryCancelled(QueryError):
    """The query was cancelled (by the user, an interrupt or someone else on the engine)."""

    state: State = "CANCELLED"


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class TableInfo:
    name: str
    type: str | None = None


@dataclass(frozen=True)
class QueryRequest:
    sql: str
    parameters: tuple[Scalar, ...] = ()
    workgroup: str | None = None


@dataclass
class Progress:
    """What a running query has told us so far; updated in place by the engine."""

    state: State = "QUEUED"
    started: float = field(default_factory=time.monotonic)
    bytes_scanned: int | None = None
    engine_id: str | None = None

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class QueryResult:
    """A finished query: Arrow columns plus the engine's own type names for display."""

    table: pa.Table
    columns: tuple[Column, ...]
    bytes_scanned: int | None


def check_parameters(values: Sequence[object]) -> tuple[Scalar, ...]:
    """Refuse anything but scalars: parameters are bound by the engine, never spliced in."""
    checked: list[Scalar] = []
    for position, value in enumerate(values, start=1):
        if value is None or isinstance(value, SCALAR_TYPES):
            checked.append(value)  # type: ignore[arg-type]
            continue
        item = getattr(value, "item", None)  # numpy scalars
        if callable(item) and getattr(value, "ndim", None) == 0:
            checked.append(check_parameters([item()])[0])
            continue
        raise InvalidQuery(
            f"parameter {position} is a {type(value).__name__}; only single values "
            f"({SCALAR_NAMES}) can be bound as query parameters"
        )
    return tuple(checked)


def check_sql(sql: object) -> str:
    if sql is not None and not isinstance(sql, str):
        raise InvalidQuery("'sql' must be a string of SQL")
    cleaned = sql.strip().rstrip(";").rstrip() if sql else ""
    if not cleaned:
        raise InvalidQuery("the query is empty: write a SQL statement to run")
    return cleaned


class RunningQuery(ABC):
    """One submitted query. `wait` runs in one thread; `cancel` may come from another."""

    def __init__(self) -> None:
        self.progress = Progress()
        self._cancel_requested = threading.Event()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested.is_set()

    @abstractmethod
    def wait(self, on_progress: ProgressCallback | None = None) -> QueryResult:
        """Block until the query ends; raise QueryError subclasses on failure or cancel."""

    def cancel(self) -> None:
        """Ask the engine to stop the query; returns at once, `wait` then raises."""
        self._cancel_requested.set()
        self._stop_on_engine()

    @abstractmethod
    def _stop_on_engine(self) -> None: ...


class QueryEngine(ABC):
    """A SQL engine the platform offers: runs queries and describes its catalog."""

    name: str

    @abstractmethod
    def submit(self, request: QueryRequest) -> RunningQuery:
        """Validate and start a query; raise InvalidQuery for a request that cannot run."""

    @abstractmethod
    def databases(self) -> list[str]: ...

    @abstractmethod
    def tables(self, database: str) -> list[TableInfo]: ...

    @abstractmethod
    def columns(self, database: str, table: str) -> list[Column]: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads."""
