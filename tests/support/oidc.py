"""A real OpenID Connect provider for tests: `oidc-provider-mock` as a process on loopback.

It serves discovery, authorize (a form that takes a `sub`), token, userinfo, JWKS and
end-session. Users are seeded at start and can be changed while it runs (`put_user`), which
is how tests move someone in or out of a group. `HubSignIn` walks the authorization-code flow
the way a browser does, one redirect at a time, so tests can break it at any step.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .client import HubClient
from .hub import RunningHub
from .ports import free_port
from .processes import start_process, stop_process_group, wait_until

MOCK_PROVIDER = Path(sys.executable).parent / "oidc-provider-mock"
CLIENT_ID_ENV = "KUMOHUB_OIDC_CLIENT_ID"
CLIENT_SECRET_ENV = "KUMOHUB_OIDC_CLIENT_SECRET"


@dataclass
class OIDCProvider:
    """One provider process; `users` maps each `sub` to its claims (without `sub`)."""

    folder: Path
    users: dict[str, dict[str, Any]]
    require_registration: bool = True
    token_max_age: int | None = None
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.url}/userinfo"

    @property
    def end_session_url(self) -> str:
        return f"{self.url}/oauth2/end_session"

    @property
    def log_path(self) -> Path:
        return self.folder / "oidc-provider.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        command = [str(MOCK_PROVIDER), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.require_registration:
            command.append("--require-registration")
        if self.token_max_age is not None:
            command += ["--token-max-age", str(self.token_max_age)]
        for sub, claims in self.users.items():
            command += ["--user-claims", json.dumps({"sub": sub, **claims})]
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "NO_COLOR": "1"}
        self._process = start_process(command, log_path=self.log_path, env=env)

        def answering() -> bool:
            if not self.running:
                raise RuntimeError(f"OIDC provider exited:\n{self.log()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                url = f"{self.url}/.well-known/openid-configuration"
                return requests.get(url, timeout=2).status_code == 200
            return False

        wait_until(answering, timeout=90, what="the OIDC provider")

    def stop(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, timeout=10)
            self._process = None

    def put_user(self, sub: str, claims: Mapping[str, Any]) -> None:
        """Create or replace a user while the provider runs (its next sign-in sees it)."""
        response = requests.put(f"{self.url}/users/{sub}", json=dict(claims), timeout=10)
        assert response.status_code == 204, response.text
        self.users[sub] = dict(claims)

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Register an OAuth client the way an administrator would; returns (id, secret)."""
        response = requests.post(
            f"{self.url}/oauth2/clients",
            json={
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["client_id"], body["client_secret"]

    def endpoint_settings(self) -> dict[str, str]:
        """The `auth` endpoint settings for this provider, without discovery."""
        return {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "userdata_url": self.userinfo_url,
        }


@contextlib.contextmanager
def run_provider(
    folder: Path, users: Mapping[str, Mapping[str, Any]], **options: Any
) -> Iterator[OIDCProvider]:
    provider = OIDCProvider(folder, {sub: dict(claims) for sub, claims in users.items()}, **options)
    try:
        provider.start()
        yield provider
    finally:
        provider.stop()


@dataclass
class HubSignIn:
    """The hub's sign-in through the provider, one redirect at a time (no auto-follow)."""

    hub: RunningHub
    client: HubClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.hub.client()

    def start(self) -> requests.Response:
        """The 'Sign in' button: the hub answers with a redirect to the provider."""
        return self.client.session.get(
            f"{self.hub.url}/hub/oauth_login", allow_redirects=False, timeout=30
        )

    def authorize(self, authorize_url: str, sub: str) -> requests.Response:
        """The provider's login form, submitted for `sub`: redirects to the hub's callback."""
        return self.client.session.post(
            authorize_url, data={"sub": sub}, allow_redirects=False, timeout=30
        )

    def callback(self, callback_url: str) -> requests.Response:
        return self.client.session.get(callback_url, allow_redirects=False, timeout=60)

    def to_callback(self, sub: str) -> str:
        """Run the flow up to the provider's redirect; return the hub callback URL."""
        started = self.start()
        assert started.status_code == 302, started.text
        authorized = self.authorize(started.headers["location"], sub)
        assert authorized.status_code == 302, authorized.text
        return authorized.headers["location"]

    def state_cookie(self) -> requests.cookies.Cookie:
        [cookie] = [c for c in self.client.session.cookies if c.name == "oauthenticator-state"]
        return cookie

    def replace_state_cookie(self, value: str | None) -> None:
        """Swap (or with None, drop) the signed state cookie, as an expired browser would."""
        cookie = self.state_cookie()
        self.client.session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        if value is not None:
            self.client.session.cookies.set(
                cookie.name, value, domain=cookie.domain, path=cookie.path
            )


def sign_in(hub: RunningHub, sub: str, user: str) -> tuple[HubClient, requests.Response]:
    """The whole flow for `sub`; the client is signed in as hub user `user` if it worked."""
    flow = HubSignIn(hub)
    response = flow.callback(flow.to_callback(sub))
    if response.status_code == 302:
        flow.client.user = user
    return flow.client, response


def forged_state(state_id: str) -> str:
    """A `state` parameter in oauthenticator's encoding that no browser was given."""
    return base64.urlsafe_b64encode(json.dumps({"state_id": state_id}).encode()).decode()


def hub_users(hub: RunningHub) -> set[str]:
    """Users the hub has recorded in its database (a refused sign-in must add none)."""
    with contextlib.closing(sqlite3.connect(hub.state / "jupyterhub.sqlite")) as db:
        return {name for (name,) in db.execute("SELECT name FROM users")}
