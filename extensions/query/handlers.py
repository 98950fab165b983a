"""REST API of the query service, under `<base_url>kumohub/query/`.

Authenticated and XSRF-checked like jupyter_server's own API handlers; every answer is
JSON and no route returns results as a file: the panel pages through rows, nothing else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .catalog import CatalogCache
from .engine import InvalidQuery, QueryError
from .service import QueryService, ResultsUnavailable, UnknownQuery

SERVICE_KEY = "kumohub_query_service"
CATALOGS_KEY = "kumohub_query_catalogs"
AUTH_RESOURCE = "kumohub-query"
T = TypeVar("T")


class QueryAPIHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def service(self) -> QueryService:
        return self.settings[SERVICE_KEY]

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"message": message}))

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    async def off_loop(self, work: Callable[[], T]) -> T:
        """Engine and catalog calls block (network, DuckDB); keep them off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, work)

    def body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise InvalidQuery("the request body must be JSON") from None
        if not isinstance(body, dict):
            raise InvalidQuery("the request body must be a JSON object")
        return body

    def int_argument(self, name: str, default: int) -> int:
        raw = self.get_argument(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise InvalidQuery(f"{name} must be a whole number, not {raw!r}") from None


class EnginesHandler(QueryAPIHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply(self.service.engines())


class QueriesHandler(QueryAPIHandler):
    @web.authenticated
    @authorized
    def post(self) -> None:
        try:
            body = self.body()
            record = self.service.submit(
                body.get("sql"), body.get("engine"), body.get("workgroup"), body.get("parameters")
            )
        except QueryError as exc:
            return self.fail(400, exc.message)
        self.set_header("Location", url_path_join(self.request.path, record.id))
        self.reply({"id": record.id, "state": record.state}, status=201)


class QueryHandler(QueryAPIHandler):
    @web.authenticated
    @authorized
    def get(self, query_id: str) -> None:
        try:
            self.reply(self.service.get(query_id).status())
        except UnknownQuery:
            self.fail(404, f"no query {query_id} on this server")

    @web.authenticated
    @authorized
    def delete(self, query_id: str) -> None:
        try:
            record = self.service.cancel(query_id)
        except UnknownQuery:
            return self.fail(404, f"no query {query_id} on this server")
        self.reply({"id": record.id, "state": record.state}, status=202)


class ResultsHandler(QueryAPIHandler):
    @web.authenticated
    @authorized
    async def get(self, query_id: str) -> None:
        try:
            offset = self.int_argument("offset", 0)
            limit = self.int_argument("limit", 100)
            page = await self.off_loop(lambda: self.service.results(query_id, offset, limit))
        except UnknownQuery:
            return self.fail(404, f"no query {query_id} on this server")
        except ResultsUnavailable as exc:
            return self.fail(409, str(exc))
        except QueryError as exc:
            return self.fail(400, exc.message)
        self.reply(page)


class CatalogHandler(QueryAPIHandler):
    def catalog(self) -> tuple[str, CatalogCache]:
        name = self.service.registry.check_engine(self.get_argument("engine", None))
        caches: dict[str, CatalogCache] = self.settings[CATALOGS_KEY]
        if name not in caches:
            ttl = self.service.settings.query.catalog_cache_seconds
            caches[name] = CatalogCache(self.service.registry.get(name), ttl)
        return name, caches[name]

    @web.authenticated
    @authorized
    async def get(self, database: str | None = None, table: str | None = None) -> None:
        try:
            name, catalog = await self.off_loop(self.catalog)
            if database is None:
                names = await self.off_loop(catalog.databases)
                return self.reply({"engine": name, "databases": [{"name": n} for n in names]})
            if table is None:
                tables = await self.off_loop(lambda: catalog.tables(database))
                listed = [{"name": t.name, "type": t.type} for t in tables]
                return self.reply({"engine": name, "database": database, "tables": listed})
            columns = await self.off_loop(lambda: catalog.columns(database, table))
        except InvalidQuery as exc:
            status = 404 if exc.message.startswith("unknown database") else 400
            status = 404 if exc.message.startswith("unknown table") else status
            return self.fail(status, exc.message)
        except QueryError as exc:
            return self.fail(502, exc.message)
        self.reply(
            {
                "engine": name,
                "database": database,
                "table": table,
                "columns": [{"name": c.name, "type": c.type} for c in columns],
            }
        )


class HistoryHandler(QueryAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        items = await self.off_loop(self.service.history.items)
        self.reply({"items": items})


_NAME = r"([^/]+)"
ROUTES: list[tuple[str, type[QueryAPIHandler]]] = [
    ("engines", EnginesHandler),
    ("queries", QueriesHandler),
    (f"queries/{_NAME}", QueryHandler),
    (f"queries/{_NAME}/results", ResultsHandler),
    ("catalog", CatalogHandler),
    (f"catalog/{_NAME}", CatalogHandler),
    (f"catalog/{_NAME}/{_NAME}", CatalogHandler),
    ("history", HistoryHandler),
]


def handlers(base_url: str) -> list[tuple[str, type[QueryAPIHandler]]]:
    prefix = url_path_join(base_url, "kumohub", "query")
    return [(url_path_join(prefix, path) + "/?", handler) for path, handler in ROUTES]
