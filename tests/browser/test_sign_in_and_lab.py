"""A person's first visit: sign in, choose a profile, JupyterLab opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.hub import USER_PASSWORD, RunningHub

pytestmark = pytest.mark.browser


def sign_in(page: Page, hub: RunningHub, user: str, password: str = USER_PASSWORD) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")


def test_sign_in_choose_profile_and_land_in_jupyterlab(
    page: Page, hub: RunningHub, artifacts_dir: Path
) -> None:
    sign_in(page, hub, "alice")
    expect(page.locator("input[name=profile][value=cpu-small]")).to_be_visible()
    expect(page.locator("input[name=profile][value=gpu-a10g]")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "spawn-form.png"))

    page.check("input[name=profile][value=cpu-large]")
    page.locator("#image-cpu-large").select_option("datascience")
    page.click("form#spawn_form button[type=submit], form#spawn_form input[type=submit]")

    page.wait_for_url("**/user/alice/lab**", timeout=120_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=90_000)
    expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "jupyterlab.png"))

    model = hub.client()
    model.login("alice", USER_PASSWORD)
    assert model.server_model()["user_options"] == {"profile": "cpu-large", "image": "datascience"}


def test_wrong_password_shows_the_login_error(page: Page, hub: RunningHub) -> None:
    sign_in(page, hub, "alice", "wrong-password")
    expect(page.locator(".login_error")).to_contain_text("Invalid username or password")
