"""A sandbox Content-Security-Policy on the server's pages: the browser refuses downloads.

Without `allow-downloads` in the sandbox, the browser will not save anything a page
offers, including `data:` and blob links that kernel output or a script builds in the
page. JupyterLab keeps working with scripts, same-origin requests, forms, modals and
popups allowed. Pages of the proxied servers users may open (code-server) keep their own
headers; code-server's downloads are switched off by its own flags.
"""

from __future__ import annotations

from tornado import httputil
from tornado.web import OutputTransform

from .paths import relative_to_base, segments

SANDBOX = "sandbox allow-scripts allow-same-origin allow-forms allow-modals allow-popups"


def sandbox_transform(base_url: str, open_servers: frozenset[str]) -> type[OutputTransform]:
    """An output transform adding the sandbox to every HTML response of the server itself."""

    class SandboxPages(OutputTransform):
        def __init__(self, request: httputil.HTTPServerRequest) -> None:
            self.path = request.path

        def transform_first_chunk(
            self,
            status_code: int,
            headers: httputil.HTTPHeaders,
            chunk: bytes,
            finishing: bool,
        ) -> tuple[int, httputil.HTTPHeaders, bytes]:
            if headers.get("Content-Type", "").startswith("text/html") and not self._proxied():
                policy = headers.get("Content-Security-Policy")
                headers["Content-Security-Policy"] = f"{policy}; {SANDBOX}" if policy else SANDBOX
            return status_code, headers, chunk

        def _proxied(self) -> bool:
            parts = segments(relative_to_base(self.path, base_url))
            return bool(parts) and parts[0].lower() in open_servers

    return SandboxPages
