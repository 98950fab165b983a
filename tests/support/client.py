"""An HTTP client that uses KumoHub the way a browser does: cookies, XSRF, redirects."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import quote

import requests


class HubClient:
    """One signed-in (or not yet signed-in) browser session against the hub."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.user: str | None = None

    def cookie(self, name: str, path_prefix: str) -> str | None:
        """A cookie by name for the longest path that matches (there can be several _xsrf)."""
        best = None
        for cookie in self.session.cookies:
            matches = cookie.name == name and path_prefix.startswith(cookie.path)
            if matches and (best is None or len(cookie.path) > len(best.path)):
                best = cookie
        return best.value if best else None

    def login(self, user: str, password: str) -> requests.Response:
        self.session.get(f"{self.url}/hub/login", timeout=10)
        response = self.session.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": password, "_xsrf": self.cookie("_xsrf", "/hub/")},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code == 302:
            self.user = user
        return response

    # -- hub API with the browser's cookie ------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        xsrf = self.cookie("_xsrf", "/hub/")
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.url}/hub/api{path}", headers=headers, **kwargs)

    def server_model(self, server: str = "") -> dict[str, Any] | None:
        model = self.api("GET", f"/users/{self.user}").json()
        return model.get("servers", {}).get(server)

    # -- spawning ---------------------------------------------------------------------------

    def spawn_url(self, server: str = "") -> str:
        suffix = f"/{quote(server)}" if server else ""
        return f"{self.url}/hub/spawn/{self.user}{suffix}"

    def spawn_form(self, server: str = "") -> requests.Response:
        return self.session.get(self.spawn_url(server), timeout=30)

    def submit_spawn_form(
        self, fields: list[tuple[str, str]], server: str = ""
    ) -> requests.Response:
        self.spawn_form(server)
        data = [*fields, ("_xsrf", self.cookie("_xsrf", "/hub/") or "")]
        return self.session.post(self.spawn_url(server), data=data, timeout=60)

    def api_spawn(self, options: Any, server: str = "") -> requests.Response:
        suffix = f"/servers/{quote(server)}" if server else "/server"
        return self.api("POST", f"/users/{self.user}{suffix}", json=options)

    def wait_ready(self, server: str = "", timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(server)
            if model and model.get("ready"):
                return model
            if model is None and time.monotonic() > deadline - timeout + 5:
                raise AssertionError(f"server {server!r} of {self.user} is not starting")
            time.sleep(0.5)
        raise TimeoutError(f"server {server!r} of {self.user} not ready after {timeout}s")

    def stop(self, server: str = "", remove: bool = False) -> requests.Response:
        suffix = f"/servers/{quote(server)}" if server else "/server"
        body = {"remove": True} if remove else None
        return self.api("DELETE", f"/users/{self.user}{suffix}", json=body)

    def wait_stopped(self, server: str = "", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(server)
            if model is None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"server {server!r} of {self.user} still running after {timeout}s")

    # -- the user's own server ------------------------------------------------------------

    def server_prefix(self, server: str = "") -> str:
        return f"/user/{self.user}/{quote(server)}/" if server else f"/user/{self.user}/"

    def open_server(self, server: str = "", page: str = "lab") -> requests.Response:
        """Follow the OAuth redirects into the user's server, as a browser does."""
        return self.session.get(f"{self.url}{self.server_prefix(server)}{page}", timeout=60)

    def server_api(
        self, method: str, path: str, server: str = "", **kwargs: Any
    ) -> requests.Response:
        prefix = self.server_prefix(server)
        headers = kwargs.pop("headers", {})
        xsrf = self.cookie("_xsrf", prefix)
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        kwargs.setdefault("timeout", 60)
        return self.session.request(
            method, f"{self.url}{prefix}{path.lstrip('/')}", headers=headers, **kwargs
        )


def error_message(response: requests.Response) -> str:
    """The message in a hub error page or JSON error."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return str(response.json().get("message", ""))
    for pattern in (
        r'class="spawn-error-msg[^"]*">(.*?)</p>',  # spawn form
        r'<div class="error">(.*?)</div>',  # error page
        r'<p class="login_error">(.*?)</p>',  # login page
    ):
        match = re.search(pattern, response.text, re.S)
        if match:
            return html.unescape(match.group(1)).strip()
    return response.text
