"""Which engines a user's server offers, built from the settings the hub passed.

The REST service and the magics share this: the same engine classes, the same workgroup
rules, the same bytes-scanned ceiling. Engines are built on first use (DuckDB may have to
generate its sample data, Athena opens AWS clients) and then reused.
"""

from __future__ import annotations

import threading

from kumohub.server_settings import ServerSettings

from .engine import InvalidQuery, QueryEngine


class EngineRegistry:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._engines: dict[str, QueryEngine] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return self.settings.query.engines()

    @property
    def default(self) -> str:
        return self.settings.query.engine

    @property
    def workgroups(self) -> tuple[str, ...]:
        if self.settings.query.athena is None:
            return ()
        return self.settings.workgroups or (self.default_workgroup or "primary",)

    @property
    def default_workgroup(self) -> str | None:
        athena = self.settings.query.athena
        if athena is None:
            return None
        return self.settings.workgroup or athena.default_workgroup

    def check_engine(self, name: str | None) -> str:
        chosen = name or self.default
        if chosen not in self.names:
            raise InvalidQuery(
                f"unknown engine {chosen!r}: this server offers {', '.join(self.names)}"
            )
        return chosen

    def check_workgroup(self, engine: str, workgroup: str | None) -> str | None:
        """The workgroup a query runs in: the user's own unless they pick another of theirs."""
        if workgroup is None or workgroup == "":
            return self.default_workgroup if engine == "athena" else None
        if not isinstance(workgroup, str) or workgroup not in self.workgroups:
            allowed = ", ".join(self.workgroups) or "none (no Athena workgroup is configured)"
            raise InvalidQuery(f"unknown workgroup {workgroup!r}: you may use {allowed}")
        return workgroup

    def get(self, name: str) -> QueryEngine:
        name = self.check_engine(name)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                engine = self._build(name)
                self._engines[name] = engine
            return engine

    def _build(self, name: str) -> QueryEngine:
        query = self.settings.query
        if name == "duckdb":
            from .duckdb_engine import DuckDBEngine

            return DuckDBEngine(query.duckdb.data_dir, query.bytes_scanned_limit)
        from .athena_engine import AthenaEngine

        assert query.athena is not None
        output = query.athena.output_location.rstrip("/") + "/"
        if self.settings.user:
            output += f"{self.settings.user}/"
        return AthenaEngine(
            query.athena,
            workgroup=self.default_workgroup,
            workgroups=self.workgroups,
            output_location=output,
            bytes_scanned_limit=query.bytes_scanned_limit,
        )

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()
