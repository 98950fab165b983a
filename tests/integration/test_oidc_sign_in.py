"""Sign-in through a real OpenID Connect provider process: groups decide who gets in and what.

The provider (oidc-provider-mock) requires client registration, so the hub's client id,
secret and callback URL are checked as a company provider would check them. Users are
identified by an opaque `sub`; the hub user name comes from `preferred_username`.
"""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.web import create_signed_value, decode_signed_value

from kumohub.server_settings import ENV_VAR as SERVER_SETTINGS_ENV
from tests.support.client import HubClient, error_message
from tests.support.hub import RunningHub, start_hub
from tests.support.oidc import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    HubSignIn,
    OIDCProvider,
    forged_state,
    hub_users,
    run_provider,
    sign_in,
)
from tests.support.ports import free_port
from tests.support.processes import server_processes

ALLOWED_GROUPS = ["data-science", "ml-platform"]
# Short, so a test sees the hub re-read the provider within seconds.
REFRESH_AGE = 3
# Short, so a test sees the hub use its refresh token.
TOKEN_MAX_AGE = 6
USERS = {
    "sub-amira": {"preferred_username": "amira", "groups": ["data-science"]},
    "sub-bruno": {"preferred_username": "bruno", "groups": ["data-science", "gpu-users"]},
    "sub-chen": {"preferred_username": "chen", "groups": ["ml-platform"]},
    "sub-dmitri": {"preferred_username": "dmitri", "groups": ["marketing"]},
    "sub-esther": {"preferred_username": "esther"},  # the provider sends no groups claim
    # `hub.admin_users: [admin]` in the example settings must not matter with OIDC.
    "sub-admin": {"preferred_username": "admin", "groups": ["data-science"]},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    folder = tmp_path_factory.mktemp("oidc-provider")
    with run_provider(folder, USERS, token_max_age=TOKEN_MAX_AGE) as running:
        yield running


@pytest.fixture(scope="module")
def hub(provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    url = f"http://127.0.0.1:{free_port()}"
    client_id, client_secret = provider.register_client(f"{url}/hub/oauth_callback")
    auth = {
        "kind": "oidc",
        **provider.endpoint_settings(),
        "logout_redirect_url": provider.end_session_url,
        "allowed_groups": ALLOWED_GROUPS,
        "admin_groups": ["ml-platform"],
        "auth_refresh_age": REFRESH_AGE,
    }
    with start_hub(
        tmp_path_factory.mktemp("oidc-hub"),
        {"hub": {"bind_url": url}, "auth": auth},
        env={CLIENT_ID_ENV: client_id, CLIENT_SECRET_ENV: client_secret},
    ) as running:
        yield running


def signed_in(hub: RunningHub, sub: str, user: str) -> HubClient:
    client, response = sign_in(hub, sub, user)
    assert response.status_code == 302, error_message(response)
    return client


def offered_profiles(client: HubClient) -> set[str]:
    form = client.spawn_form()
    assert form.status_code == 200, error_message(form)
    return set(re.findall(r'name="profile" id="profile-[^"]+" value="([^"]+)"', form.text))


def refused(hub: RunningHub, sub: str) -> tuple[HubClient, str]:
    """Sign in as `sub`, expecting a 403 page; returns the client and the page's message."""
    client, response = sign_in(hub, sub, sub)
    assert response.status_code == 403, response.text
    assert "text/html" in response.headers["content-type"]
    return client, error_message(response)


def assert_nothing_recorded(hub: RunningHub, client: HubClient, user: str) -> None:
    assert user not in hub_users(hub)
    assert server_processes(user) == []
    home = client.session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]


def test_sign_in_lands_on_the_spawn_page_with_the_profiles_groups_allow(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    flow = HubSignIn(hub)
    started = flow.start()
    assert started.status_code == 302
    assert started.headers["location"].startswith(provider.authorize_url + "?")
    authorized = flow.authorize(started.headers["location"], "sub-bruno")
    assert authorized.status_code == 302
    callback = authorized.headers["location"]
    assert callback.startswith(f"{hub.url}/hub/oauth_callback?")
    landed = flow.callback(callback)
    assert landed.status_code == 302 and landed.headers["location"].endswith("/hub/spawn")
    flow.client.user = "bruno"
    assert offered_profiles(flow.client) == {"cpu-small", "cpu-large", "gpu-a10g"}

    amira = signed_in(hub, "sub-amira", "amira")
    assert offered_profiles(amira) == {"cpu-small", "cpu-large"}
    assert amira.api_spawn({"profile": "gpu-a10g", "image": "pytorch"}).status_code == 400
    assert server_processes("amira") == []


def test_provider_groups_become_hub_groups_and_reach_the_server(hub: RunningHub) -> None:
    bruno = signed_in(hub, "sub-bruno", "bruno")
    assert set(bruno.api("GET", "/user").json()["groups"]) == {"data-science", "gpu-users"}

    response = bruno.submit_spawn_form([("profile", "cpu-small"), ("image", "datascience")])
    assert response.status_code == 200, error_message(response)
    bruno.wait_ready()
    # The local launcher generated the key that encrypts the stored tokens, and kept it.
    crypt_key = hub.state / "secrets" / "crypt-key"
    assert re.fullmatch(r"[0-9a-f]{64}", crypt_key.read_text().strip())
    assert crypt_key.stat().st_mode & 0o777 == 0o600
    [pid] = server_processes("bruno")
    environ = dict(
        line.split(b"=", 1)
        for line in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"=" in line
    )
    server_settings = json.loads(environ[SERVER_SETTINGS_ENV.encode()])
    assert server_settings["groups"] == ["data-science", "gpu-users"]
    assert bruno.stop().status_code in (202, 204)
    bruno.wait_stopped()


def test_admin_group_members_get_the_admin_page_and_others_do_not(hub: RunningHub) -> None:
    signed_in(hub, "sub-amira", "amira")
    chen = signed_in(hub, "sub-chen", "chen")
    admin_page = chen.session.get(f"{hub.url}/hub/admin", timeout=30)
    assert admin_page.status_code == 200 and "admin-react" in admin_page.text
    users = {u["name"]: u for u in chen.api("GET", "/users").json()}
    assert users["chen"]["admin"] is True
    assert users["amira"]["groups"] == ["data-science"] and users["amira"]["admin"] is False

    for sub, user in (("sub-amira", "amira"), ("sub-admin", "admin")):
        client = signed_in(hub, sub, user)
        page = client.session.get(f"{hub.url}/hub/admin", timeout=30)
        assert page.status_code == 403, f"{user} must not be an admin"


def test_user_outside_the_allowed_groups_is_refused_clearly(hub: RunningHub) -> None:
    client, message = refused(hub, "sub-dmitri")
    assert "dmitri is not in a group allowed to use KumoHub" in message
    assert "data-science, ml-platform" in message
    assert_nothing_recorded(hub, client, "dmitri")


def test_missing_groups_claim_is_no_groups_and_says_so(hub: RunningHub) -> None:
    client, message = refused(hub, "sub-esther")
    assert "the identity provider sent no 'groups' claim" in message
    assert_nothing_recorded(hub, client, "esther")


def test_account_without_the_username_claim_is_refused_clearly(hub: RunningHub) -> None:
    # The provider knows this subject but has no preferred_username for it.
    client, message = refused(hub, "sub-without-name")
    assert "has no 'preferred_username' claim" in message
    assert "Internal Server Error" not in message
    assert "sub-without-name" not in hub_users(hub)
    assert_nothing_recorded(hub, client, "sub-without-name")


def test_cancelling_at_the_provider_is_a_clear_page(hub: RunningHub) -> None:
    flow = HubSignIn(hub)
    started = flow.start()
    denied = flow.client.session.post(
        started.headers["location"], data={"action": "deny"}, allow_redirects=False, timeout=30
    )
    response = flow.callback(denied.headers["location"])
    assert response.status_code == 403
    assert "Sign-in was cancelled at the identity provider" in error_message(response)


def _resigned(hub: RunningHub, cookie_value: str, age_seconds: float) -> str:
    """The same signed state cookie, as if the hub had issued it `age_seconds` ago."""
    secret = binascii.a2b_hex((hub.state / "jupyterhub_cookie_secret").read_text().strip())
    value = decode_signed_value(secret, "oauthenticator-state", cookie_value.strip('"'))
    assert value is not None
    issued = time.time() - age_seconds
    signed = create_signed_value(secret, "oauthenticator-state", value, clock=lambda: issued)
    return f'"{signed.decode()}"'


@pytest.mark.parametrize("case", ["tampered", "expired", "missing"])
def test_bad_state_is_refused_clearly(hub: RunningHub, case: str) -> None:
    flow = HubSignIn(hub)
    callback = flow.to_callback("sub-amira")
    if case == "tampered":
        callback = re.sub(r"state=[^&]+", f"state={forged_state('0' * 32)}", callback)
        expected = "does not belong to the sign-in this browser started"
    elif case == "expired":
        flow.replace_state_cookie(_resigned(hub, flow.state_cookie().value, 11 * 60))
        expected = "This sign-in has expired"
    else:
        flow.replace_state_cookie(None)
        expected = "This sign-in has expired or was started in another browser"
    response = flow.callback(callback)
    assert response.status_code == 400
    assert expected in error_message(response)
    assert server_processes("amira") == []
    home = flow.client.session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]


def test_code_the_provider_did_not_issue_is_refused_clearly(hub: RunningHub) -> None:
    flow = HubSignIn(hub)
    callback = re.sub(
        r"code=[^&]+", "code=not-a-code-the-provider-issued", flow.to_callback("sub-amira")
    )
    response = flow.callback(callback)
    assert response.status_code == 400
    assert "The sign-in code from the identity provider is no longer valid" in error_message(
        response
    )
    home = flow.client.session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["location"]


def test_sign_in_within_the_time_limit_is_accepted(hub: RunningHub) -> None:
    # The same re-signing as the expired case, with an age inside the 10-minute limit.
    flow = HubSignIn(hub)
    callback = flow.to_callback("sub-amira")
    flow.replace_state_cookie(_resigned(hub, flow.state_cookie().value, 9 * 60))
    assert flow.callback(callback).status_code == 302


def test_sign_out_ends_the_session_and_the_provider_session(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    amira = signed_in(hub, "sub-amira", "amira")
    assert amira.spawn_form().status_code == 200
    out = amira.session.get(f"{hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302 and out.headers["location"] == provider.end_session_url
    after = amira.session.get(amira.spawn_url(), allow_redirects=False, timeout=30)
    assert after.status_code == 302 and "/hub/login" in after.headers["location"]


def test_session_outlives_its_access_token_through_the_refresh_token(hub: RunningHub) -> None:
    amira = signed_in(hub, "sub-amira", "amira")
    time.sleep(TOKEN_MAX_AGE + 1)
    assert offered_profiles(amira) == {"cpu-small", "cpu-large"}
    assert "Refreshing oauth access token for amira" in hub.log()


def test_group_changes_at_the_provider_reach_the_hub(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    provider.put_user(
        "sub-femi", {"preferred_username": "femi", "groups": ["data-science", "gpu-users"]}
    )
    femi = signed_in(hub, "sub-femi", "femi")
    assert "gpu-a10g" in offered_profiles(femi)

    # Out of gpu-users: the GPU profile goes at the next refresh, without signing out.
    provider.put_user("sub-femi", {"preferred_username": "femi", "groups": ["data-science"]})
    time.sleep(REFRESH_AGE + 0.5)
    assert offered_profiles(femi) == {"cpu-small", "cpu-large"}
    assert femi.api("GET", "/user").json()["groups"] == ["data-science"]

    # Out of every allowed group: signed out at the next refresh, refused at sign-in.
    provider.put_user("sub-femi", {"preferred_username": "femi", "groups": ["marketing"]})
    time.sleep(REFRESH_AGE + 0.5)
    page = femi.session.get(femi.spawn_url(), allow_redirects=False, timeout=30)
    assert page.status_code == 302 and "/hub/login" in page.headers["location"]
    _, message = refused(hub, "sub-femi")
    assert "femi is not in a group allowed to use KumoHub" in message
    assert server_processes("femi") == []


def test_provider_outage_keeps_working_sessions_and_refuses_new_ones(
    hub: RunningHub, provider: OIDCProvider
) -> None:
    # Runs last: it stops the provider for the rest of the module.
    amira = signed_in(hub, "sub-amira", "amira")
    provider.stop()
    time.sleep(REFRESH_AGE + 0.5)
    assert offered_profiles(amira) == {"cpu-small", "cpu-large"}
    assert "Keeping amira signed in: provider did not answer" in hub.log()

    newcomer = HubSignIn(hub).start()
    assert newcomer.status_code == 503
    assert "KumoHub cannot reach the identity provider" in error_message(newcomer)
