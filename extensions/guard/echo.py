"""Stores that echo what was saved, bounded in size.

`/api/config/<section>`, `/lab/api/settings` and `/lab/api/workspaces` return JSON files
from the user's config folders. JupyterLab needs them, and a kernel can write anything into
those files, including a data file wrapped in JSON. What they can carry that way is what
the kernel could print anyway (a residual risk, see docs/security.md), so they stay open
but are capped: a response larger than the policy's `echo_store_max_bytes` is replaced by
the guard's refusal. The cap applies to the response itself, whatever file it came from,
error responses included (a validation error quotes the value it rejects).
"""

from __future__ import annotations

from tornado import httputil
from tornado.web import OutputTransform

from .audit import AuditLog, current_username
from .decisions import Verdict
from .paths import normalize, relative_to_base, segments
from .router import GUARD_HEADER, refusal_body

ECHO_STORES = (("api", "config"), ("lab", "api", "settings"), ("lab", "api", "workspaces"))


def is_echo_store(relative: str) -> bool:
    parts = tuple(part.lower() for part in segments(relative))
    return any(parts[: len(store)] == store for store in ECHO_STORES)


def echo_store_transform(base_url: str, max_bytes: int, audit: AuditLog) -> type[OutputTransform]:
    """An output transform refusing echo-store responses above `max_bytes`."""

    class CapEchoStores(OutputTransform):
        def __init__(self, request: httputil.HTTPServerRequest) -> None:
            self.request = request
            self.relative = relative_to_base(request.path, base_url)
            self.refused = False

        def transform_first_chunk(
            self,
            status_code: int,
            headers: httputil.HTTPHeaders,
            chunk: bytes,
            finishing: bool,
        ) -> tuple[int, httputil.HTTPHeaders, bytes]:
            if not is_echo_store(self.relative):
                return status_code, headers, chunk
            declared = int(headers.get("Content-Length", len(chunk)) or 0)
            if finishing and len(chunk) <= max_bytes and declared <= max_bytes:
                return status_code, headers, chunk
            self.refused = True
            reason = f"the response is larger than the {max_bytes}-byte limit of echo stores"
            verdict = Verdict("echo-store", reason, normalize(self.relative).lstrip("/"))
            audit.blocked(verdict, method=self.request.method or "", user=current_username())
            body = refusal_body(verdict)
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(body))
            headers[GUARD_HEADER] = "blocked; class=echo-store"
            return 403, headers, body

        def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
            return b"" if self.refused else chunk

    return CapEchoStores
