"""Signing in through the company's identity provider, in Chromium, end to end.

The hub is configured the way the Cognito example in docs/identity-provider.md is: user
claims from the ID token, the user name in `cognito:username`, groups in `cognito:groups`.
The provider is a real oidc-provider-mock process with a registered client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import new_context
from tests.support.hub import RunningHub, start_hub
from tests.support.oidc import CLIENT_ID_ENV, CLIENT_SECRET_ENV, OIDCProvider, run_provider
from tests.support.ports import free_port

pytestmark = pytest.mark.browser

USERS = {
    "sub-bruna": {"cognito:username": "bruna", "cognito:groups": ["data-science", "gpu-users"]},
    "sub-aiko": {"cognito:username": "aiko", "cognito:groups": ["data-science"]},
    "sub-chiara": {"cognito:username": "chiara", "cognito:groups": ["ml-platform"]},
    "sub-duc": {"cognito:username": "duc", "cognito:groups": ["finance"]},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    with run_provider(tmp_path_factory.mktemp("oidc-provider"), USERS) as running:
        yield running


@pytest.fixture(scope="module")
def hub(provider: OIDCProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    url = f"http://127.0.0.1:{free_port()}"
    client_id, client_secret = provider.register_client(f"{url}/hub/oauth_callback")
    auth = {
        "kind": "oidc",
        "authorize_url": provider.authorize_url,
        "token_url": provider.token_url,
        "claims_from": "id_token",
        "username_claim": "cognito:username",
        "groups_claim": "cognito:groups",
        "allowed_groups": ["data-science", "ml-platform"],
        "admin_groups": ["ml-platform"],
    }
    with start_hub(
        tmp_path_factory.mktemp("oidc-hub"),
        {"hub": {"bind_url": url}, "auth": auth},
        env={CLIENT_ID_ENV: client_id, CLIENT_SECRET_ENV: client_secret},
    ) as running:
        yield running


def sign_in(
    page: Page, hub: RunningHub, provider: OIDCProvider, sub: str, screenshot: Path | None = None
) -> None:
    """Hub sign-in page -> the provider's login form -> back to the hub."""
    page.goto(f"{hub.url}/hub/login")
    page.get_by_role("button", name="Sign in with your company account").click()
    page.wait_for_url(f"{provider.authorize_url}?**")
    page.fill("input[name=sub]", sub)
    if screenshot:
        page.screenshot(path=str(screenshot))
    page.get_by_role("button", name="Authorize").click()


def offered_profiles(page: Page) -> set[str]:
    expect(page.locator("input[name=profile]").first).to_be_visible()
    radios = page.locator("input[name=profile]")
    return {radios.nth(i).get_attribute("value") or "" for i in range(radios.count())}


def test_sign_in_through_the_provider_to_the_profiles_my_groups_allow(
    browser: Browser, page: Page, hub: RunningHub, provider: OIDCProvider, artifacts_dir: Path
) -> None:
    page.goto(f"{hub.url}/hub/login")
    expect(page.get_by_role("button", name="Sign in with your company account")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "oidc-login.png"))

    sign_in(page, hub, provider, "sub-bruna", artifacts_dir / "oidc-provider.png")
    page.wait_for_url(f"{hub.url}/hub/spawn**")
    assert offered_profiles(page) == {"cpu-small", "cpu-large", "gpu-a10g"}
    expect(page.locator("#profile-gpu-a10g")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "oidc-spawn.png"), full_page=True)

    context = new_context(browser)
    try:
        other = context.new_page()
        sign_in(other, hub, provider, "sub-aiko")
        other.wait_for_url(f"{hub.url}/hub/spawn**")
        assert offered_profiles(other) == {"cpu-small", "cpu-large"}
    finally:
        context.close()


def test_admin_group_member_sees_the_admin_page(
    page: Page, hub: RunningHub, provider: OIDCProvider
) -> None:
    sign_in(page, hub, provider, "sub-chiara")
    page.wait_for_url(f"{hub.url}/hub/spawn**")
    page.goto(f"{hub.url}/hub/admin")
    expect(page.get_by_role("button", name="Add Users")).to_be_visible()
    expect(page.get_by_test_id("user-name-div-chiara")).to_be_visible()


def test_user_outside_the_allowed_groups_is_refused_with_a_clear_page(
    page: Page, hub: RunningHub, provider: OIDCProvider, artifacts_dir: Path
) -> None:
    sign_in(page, hub, provider, "sub-duc")
    page.wait_for_url(f"{hub.url}/hub/oauth_callback**")
    error = page.locator("div.error")
    expect(error).to_contain_text("403")
    expect(error).to_contain_text("duc is not in a group allowed to use KumoHub")
    expect(error).to_contain_text("data-science, ml-platform")
    page.screenshot(path=str(artifacts_dir / "oidc-refused.png"))

    error.get_by_role("link", name="Back to the sign-in page").click()
    page.wait_for_url(f"{hub.url}/hub/login**")
