"""The guard's place in tornado: the first rule of the application's router.

Tornado asks each rule of `Application.default_router` in turn which handler a request
goes to; extensions append their rules behind the existing ones. A rule inserted at
position 0 is therefore asked first about every request, websocket upgrades and proxy
routes included, whatever order extensions loaded in. Its matcher matches only requests
the guard refuses, which then go to `BlockedHandler`; every other request falls through
to the rules behind it untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from tornado import httputil, web
from tornado.routing import Matcher, Rule

from .audit import AuditLog
from .decisions import RequestGuard, Verdict
from .paths import normalize

GUARD_HEADER = "X-KumoHub-Guard"
_VERDICT_ATTRIBUTE = "kumohub_guard_verdict"


def refusal_body(verdict: Verdict) -> bytes:
    """What a refused request gets back: the reason, never anything of the target."""
    return json.dumps(
        {
            "message": f"Blocked by the KumoHub download guard: {verdict.reason}",
            "route_class": verdict.route_class,
            "reason": verdict.reason,
        }
    ).encode()


class BlockedHandler(JupyterHandler):
    """Answers a refused request with 403 and records one audit event.

    It runs none of the usual request processing (no XSRF check, no login redirect): the
    request is refused whoever sent it. The requester is looked up only to name them in
    the audit event.
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, audit: AuditLog | None) -> None:  # type: ignore[override]
        self.audit = audit

    @property
    def verdict(self) -> Verdict:
        return getattr(self.request, _VERDICT_ATTRIBUTE)

    async def prepare(self) -> None:  # type: ignore[override]
        verdict = self.verdict
        if self.audit is not None:
            user = await self._requesting_user()
            self.audit.blocked(verdict, method=self.request.method or "", user=user)
        else:
            self.log.error("Download guard blocked %s (no audit log)", verdict)
        raise web.HTTPError(403, verdict.reason)

    async def _requesting_user(self) -> str:
        try:
            user = self.identity_provider.get_user(self)
            if hasattr(user, "__await__"):
                user = await user
        except Exception:
            return ""
        return getattr(user, "username", "") or ""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        verdict = self.verdict
        self.set_header(GUARD_HEADER, f"blocked; class={verdict.route_class}")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(refusal_body(verdict))

    # Every verb ends in prepare(); these only make tornado accept the verb.
    def get(self, *args: Any, **kwargs: Any) -> None:
        raise web.HTTPError(403)

    head = post = delete = patch = put = options = get


class GuardMatcher(Matcher):
    """Matches exactly the requests the guard refuses."""

    def __init__(
        self, decide: Callable[[httputil.HTTPServerRequest], Verdict | None], log: logging.Logger
    ) -> None:
        self.decide = decide
        self.log = log

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        try:
            verdict = self.decide(request)
        except Exception:
            self.log.exception("Download guard failed on %s; refusing it", request.path)
            verdict = failure_verdict(request)
        if verdict is None:
            return None
        setattr(request, _VERDICT_ATTRIBUTE, verdict)
        return {}


def failure_verdict(request: httputil.HTTPServerRequest) -> Verdict:
    return Verdict(
        "guard-failure",
        "the download guard could not judge this request",
        normalize(request.path).lstrip("/"),
    )


def request_decider(
    guard: RequestGuard, refresh: Callable[[], None]
) -> Callable[[httputil.HTTPServerRequest], Verdict | None]:
    """The function the matcher calls: re-read the router if it grew, then decide."""

    def decide(request: httputil.HTTPServerRequest) -> Verdict | None:
        refresh()
        return guard.decide(request.method or "GET", request.path, request.query_arguments)

    return decide


def guard_rule(matcher: GuardMatcher, audit: AuditLog | None) -> Rule:
    return Rule(matcher, BlockedHandler, {"audit": audit}, name="kumohub-download-guard")


def insert_first(app: web.Application, rule: Rule) -> None:
    """Put `rule` at the head of the router (again, if something went before it)."""
    rules = app.default_router.rules
    if rules and rules[0] is rule:
        return
    with contextlib.suppress(ValueError):
        rules.remove(rule)
    rules.insert(0, rule)


def refuse_everything(app: web.Application, log: logging.Logger) -> Rule:
    """Fail closed: when the guard cannot be built, the server serves nothing at all."""
    rule = guard_rule(GuardMatcher(lambda request: failure_verdict(request), log), None)
    insert_first(app, rule)
    return rule
