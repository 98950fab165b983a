"""When the identity provider or the hub's OIDC configuration is wrong, people get a clear page.

The hub here finds its endpoints through the provider's discovery document (`issuer`) and
holds a registered client id with the wrong secret. The last test stops the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import error_message
from tests.support.hub import RunningHub, start_hub
from tests.support.oidc import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    HubSignIn,
    OIDCProvider,
    hub_users,
    run_provider,
)
from tests.support.ports import free_port
from tests.support.processes import server_processes

USERS = {"sub-ivan": {"preferred_username": "ivan", "groups": ["data-science"]}}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    with run_provider(tmp_path_factory.mktemp("oidc-provider"), USERS) as running:
        yield running


@pytest.fixture(scope="module")
def hub(provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    url = f"http://127.0.0.1:{free_port()}"
    client_id, _ = provider.register_client(f"{url}/hub/oauth_callback")
    auth = {"kind": "oidc", "issuer": provider.url, "allowed_groups": ["data-science"]}
    env = {CLIENT_ID_ENV: client_id, CLIENT_SECRET_ENV: "not-the-secret-the-provider-issued"}
    with start_hub(
        tmp_path_factory.mktemp("oidc-hub"), {"hub": {"bind_url": url}, "auth": auth}, env=env
    ) as running:
        yield running


def assert_no_sign_in(hub: RunningHub, flow: HubSignIn) -> None:
    assert "ivan" not in hub_users(hub)
    assert server_processes("ivan") == []
    home = flow.client.session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]


def test_endpoints_come_from_the_discovery_document(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    started = HubSignIn(hub).start()
    assert started.status_code == 302
    assert started.headers["location"].startswith(provider.authorize_url + "?")
    out = hub.client().session.get(f"{hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302 and out.headers["location"] == provider.end_session_url


def test_wrong_client_secret_is_a_clear_error(hub: RunningHub) -> None:
    flow = HubSignIn(hub)
    response = flow.callback(flow.to_callback("sub-ivan"))
    assert response.status_code == 502
    message = error_message(response)
    assert "did not accept KumoHub's client credentials (invalid_client)" in message
    assert "client id or client secret is wrong" in message
    assert "Internal Server Error" not in message
    assert_no_sign_in(hub, flow)


def _failed_start(folder: Path, auth: dict[str, Any], env: dict[str, str]) -> str:
    with pytest.raises(RuntimeError) as failure, start_hub(folder, {"auth": auth}, env=env):
        pass
    message = str(failure.value)
    assert "hub exited with 2" in message and "Traceback" not in message
    return message


def test_unreachable_issuer_stops_start_up(tmp_path: Path) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    auth = {"kind": "oidc", "issuer": issuer, "allowed_groups": ["data-science"]}
    env = {CLIENT_ID_ENV: "kumohub", CLIENT_SECRET_ENV: "secret"}
    message = _failed_start(tmp_path, auth, env)
    assert (
        f"auth.issuer: cannot read the provider's discovery document "
        f"{issuer}/.well-known/openid-configuration: [Errno 111] Connection refused"
    ) in message


def test_provider_unreachable_at_callback_and_at_sign_in(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    flow = HubSignIn(hub)
    callback = flow.to_callback("sub-ivan")
    provider.stop()

    response = flow.callback(callback)
    assert response.status_code == 503
    expected = f"KumoHub cannot reach the identity provider (127.0.0.1:{provider.port})"
    assert expected in error_message(response)

    # Pressing "Sign in" again: a page from the hub, not a browser error at the provider.
    retry = flow.start()
    assert retry.status_code == 503
    assert expected in error_message(retry)
    assert_no_sign_in(hub, flow)
