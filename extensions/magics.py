"""`%%athena` / `%athena` magics: SQL from a notebook into a pandas DataFrame.

    %load_ext kumohub.magics
    %%athena -o orders --engine duckdb
    SELECT * FROM orders WHERE country = :country AND ordered_at >= :since

Options: `-o NAME` stores the DataFrame in the notebook; `--engine`, `--workgroup`
choose among what the platform allows this user; `:name` markers (or `?` markers with
`-p NAME` in order) are bound from notebook variables by the engine, never pasted into the
SQL. While the query runs a line shows its state, elapsed time and data scanned; a kernel
interrupt (Ctrl-C, the stop button) cancels it on the engine. The engines run in the
kernel itself, with the settings the hub gave the server (the kernel inherits its env).
"""

from __future__ import annotations

import html
import re
import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from kumohub.extensions.query.dataframe import to_dataframe
from kumohub.extensions.query.engine import (
    InvalidQuery,
    Progress,
    QueryCancelled,
    QueryError,
    QueryRequest,
    QueryResult,
    RunningQuery,
    check_parameters,
)
from kumohub.extensions.query.engines import EngineRegistry
from kumohub.extensions.query.formatting import human_bytes, human_ms
from kumohub.extensions.query.placeholders import bind

from kumohub import server_settings

_VALUE_OPTIONS = {"-o": "output", "--output": "output", "--engine": "engine"}
_VALUE_OPTIONS |= {"--workgroup": "workgroup", "-p": "param", "--param": "param"}
_TOKEN = re.compile(r"\S+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REFRESH_S = 0.25


class QueryMagicError(Exception):
    """Shown as one line (no traceback) and, unlike IPython's UsageError, it fails the cell
    so that "run all" stops there."""

    kind = "QueryError"

    def _render_traceback_(self) -> list[str]:
        return [f"{self.kind}: {self}"]


class QueryInputError(QueryMagicError):
    """The magic's input is wrong: options, parameters, engine or workgroup."""

    kind = "InvalidQuery"


class QueryFailedError(QueryMagicError):
    """The engine ran the query and it failed (the engine's reason is the message)."""

    kind = "QueryFailed"


@dataclass
class MagicOptions:
    output: str | None = None
    engine: str | None = None
    workgroup: str | None = None
    params: tuple[str, ...] = ()


def parse_line(line: str) -> tuple[MagicOptions, str]:
    """Options first, then (line magic) the SQL, which is kept exactly as written."""
    options = MagicOptions()
    params: list[str] = []
    tokens = list(_TOKEN.finditer(line))
    i = 0
    while i < len(tokens):
        word = tokens[i].group()
        if not word.startswith("-"):
            break
        key = _VALUE_OPTIONS.get(word)
        if key is None:
            raise QueryInputError(f"unknown option {word}; use -o, --engine, --workgroup or -p")
        if i + 1 >= len(tokens):
            raise QueryInputError(f"option {word} needs a value")
        value = tokens[i + 1].group()
        if key in ("output", "param") and not _NAME.fullmatch(value):
            raise QueryInputError(f"{word} needs a Python variable name, not {value!r}")
        if key == "param":
            params.append(value)
        else:
            setattr(options, key, value)
        i += 2
    options.params = tuple(params)
    sql = line[tokens[i].start() :] if i < len(tokens) else ""
    return options, sql


class ProgressLine:
    """The line under a running cell: state, elapsed time, data scanned."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.text = f"{engine}: QUEUED"

    def show(self, progress: Progress, rows: int | None = None) -> ProgressLine:
        parts = [f"{self.engine}: {progress.state}", human_ms(progress.elapsed_ms)]
        parts.append(f"{human_bytes(progress.bytes_scanned)} scanned")
        if rows is not None:
            parts.append(f"{rows:,} rows")
        self.text = " · ".join(parts)
        return self

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<pre class="kumohub-query-progress">{html.escape(self.text)}</pre>'


class _Waiter(threading.Thread):
    """Runs `RunningQuery.wait` so the kernel's main thread stays free for Ctrl-C."""

    def __init__(self, query: RunningQuery) -> None:
        super().__init__(name="kumohub-query-wait", daemon=True)
        self.query = query
        self.result: QueryResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.query.wait()
        except BaseException as exc:
            self.error = exc


@dataclass
class LastRun:
    engine: str
    state: str
    message: str | None = None


@magics_class
class QueryMagics(Magics):
    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self._registry: EngineRegistry | None = None
        self.last_run: LastRun | None = None

    @property
    def registry(self) -> EngineRegistry:
        if self._registry is None:
            self._registry = EngineRegistry(server_settings.from_env())
        return self._registry

    @line_cell_magic
    def athena(self, line: str, cell: str | None = None) -> pd.DataFrame | None:
        """Run SQL on Athena (or DuckDB in local mode) and return a DataFrame."""
        options, sql = parse_line(line)
        if cell is not None:
            if sql.strip():
                raise QueryInputError(f"unexpected text after the options: {sql.strip()!r}")
            sql = cell
        try:
            engine_name = self.registry.check_engine(options.engine)
            workgroup = self.registry.check_workgroup(engine_name, options.workgroup)
            sql, values = bind(sql, self.shell.user_ns, list(options.params) or None)
            parameters = tuple(_checked(name, value) for name, value in values)
            engine = self.registry.get(engine_name)
            query = engine.submit(QueryRequest(sql, parameters, workgroup))
        except InvalidQuery as exc:
            raise QueryInputError(exc.message) from None
        except QueryError as exc:
            self.last_run = LastRun(engine_name, exc.state, exc.message)
            raise QueryFailedError(exc.message) from None
        table = self._wait(engine_name, query)
        frame = to_dataframe(table.table)
        if options.output:
            self.shell.user_ns[options.output] = frame
        return frame

    def _wait(self, engine_name: str, query: RunningQuery) -> QueryResult:
        line = ProgressLine(engine_name)
        shown = display(line, display_id=True)
        waiter = _Waiter(query)
        waiter.start()
        try:
            while waiter.is_alive():
                waiter.join(REFRESH_S)
                if shown is not None:
                    shown.update(line.show(query.progress))
        except KeyboardInterrupt:
            query.cancel()
            waiter.join()
            self.last_run = LastRun(engine_name, "CANCELLED", "interrupted")
            if shown is not None:
                query.progress.state = "CANCELLED"
                shown.update(line.show(query.progress))
            print(f"Query cancelled on {engine_name}.")
            raise
        if waiter.error is not None:
            error = waiter.error
            state = error.state if isinstance(error, QueryError) else "FAILED"
            self.last_run = LastRun(engine_name, state, str(error))
            if shown is not None:
                query.progress.state = state
                shown.update(line.show(query.progress))
            if isinstance(error, QueryCancelled):
                raise QueryFailedError(f"cancelled: {error}") from None
            if isinstance(error, QueryError):
                raise QueryFailedError(error.message) from None
            raise error
        assert waiter.result is not None
        self.last_run = LastRun(engine_name, "SUCCEEDED")
        if shown is not None:
            query.progress.state = "SUCCEEDED"
            shown.update(line.show(query.progress, waiter.result.table.num_rows))
        return waiter.result


def _checked(name: str, value: object) -> Any:
    try:
        return check_parameters([value])[0]
    except InvalidQuery:
        raise InvalidQuery(
            f"parameter {name!r} is a {type(value).__name__}; only single values "
            "(str, int, float, bool, Decimal, date, datetime or None) can be query parameters"
        ) from None


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(QueryMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo: IPython keeps registered magics until the kernel restarts."""
