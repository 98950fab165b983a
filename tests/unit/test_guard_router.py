"""The guard's place in a real tornado application: first rule, live route map, fail closed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from jupyter_server.base.handlers import FileFindHandler
from jupyter_server_proxy.handlers import LocalProxyHandler, NamedLocalProxyHandler
from kumohub.extensions.guard.decisions import Verdict
from kumohub.extensions.guard.locations import Locations
from kumohub.extensions.guard.route_map import RouteMap
from kumohub.extensions.guard.router import (
    GuardMatcher,
    failure_verdict,
    guard_rule,
    insert_first,
)
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.web import Application, RequestHandler

BASE = "/user/alice/"
LOG = logging.getLogger("test-guard-router")


class RStudio(NamedLocalProxyHandler):
    """A named server an entry point could add without anyone listing it."""


class VSCode(NamedLocalProxyHandler):
    pass


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("system", "home")}
    for folder in found.values():
        folder.mkdir()
    return found


def locations(folders: dict[str, Path]) -> Locations:
    return Locations((str(folders["system"]),), (str(folders["home"]),), check_ownership=False)


def application(folders: dict[str, Path]) -> Application:
    """Routes laid out as jupyter_server and its extensions lay them out."""
    system, home = str(folders["system"]), str(folders["home"])
    app = Application([(BASE + "static/(.*)", FileFindHandler, {"path": [system]})])
    app.add_handlers(
        ".*$",
        [
            (BASE + "lab/extensions/(.*)", FileFindHandler, {"path": [system, home]}),
            (BASE + r"proxy/(\d+)(/.*|)", LocalProxyHandler, {"absolute_url": False}),
        ],
    )
    app.add_handlers(".*$", [(BASE + "rstudio/(.*)", RStudio, {"state": {}})])
    return app


def test_the_route_map_finds_named_servers_and_risky_static_routes(
    folders: dict[str, Path],
) -> None:
    app = application(folders)
    routes = RouteMap(BASE, locations(folders))
    routes.refresh(app)
    assert routes.named_servers == {"rstudio"}
    assert [route.route_class for route in routes.static_routes] == ["lab-extension-file"]

    app.add_handlers(".*$", [(BASE + "vscode/(.*)", VSCode, {"state": {}})])
    routes.refresh(app)
    assert routes.named_servers == {"rstudio", "vscode"}


def test_the_guard_rule_stays_first_whatever_loads_after_it(folders: dict[str, Path]) -> None:
    app = application(folders)
    rule = guard_rule(GuardMatcher(lambda request: None, LOG), None)
    insert_first(app, rule)
    app.add_handlers(".*$", [(BASE + "late/(.*)", Hello)])
    assert app.default_router.rules[0] is rule
    app.default_router.rules.insert(0, app.default_router.rules.pop())  # something cuts in
    insert_first(app, rule)
    assert app.default_router.rules[0] is rule
    assert app.default_router.rules.count(rule) == 1


def test_a_request_the_guard_cannot_judge_is_refused() -> None:
    def broken(request: HTTPServerRequest) -> Verdict | None:
        raise ValueError("unexpected")

    matcher = GuardMatcher(broken, LOG)
    request = HTTPServerRequest(method="GET", uri=BASE + "api/status", headers=HTTPHeaders())
    assert matcher.match(request) == {}
    verdict = request.kumohub_guard_verdict  # type: ignore[attr-defined]
    assert verdict == failure_verdict(request)
    assert verdict.route_class == "guard-failure"


def test_requests_the_guard_allows_fall_through() -> None:
    matcher = GuardMatcher(lambda request: None, LOG)
    request = HTTPServerRequest(method="GET", uri=BASE + "api/status", headers=HTTPHeaders())
    assert matcher.match(request) is None
