"""Who sees which profile on the spawn form, in a real browser.

alice (no GPU rights) never sees the GPU profile; bob (gpu-users) sees it with its GPU badge
and hourly cost, and picking it on this GPU-less machine gives a clear refusal. A profile
whose display strings are HTML (as a careless or hostile settings edit could make them)
shows as text and runs nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.support.hub import ADMIN_PASSWORD, LOCAL_SETTINGS, USER_PASSWORD, RunningHub, start_hub

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def rights_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """The example settings plus an admin-only profile with HTML in its display strings."""
    profiles = copy.deepcopy(yaml.safe_load(LOCAL_SETTINGS.read_text())["profiles"])
    hostile = copy.deepcopy(profiles[0])
    hostile.update(
        slug="cpu-odd",
        display_name=HOSTILE,
        description=f"</div>{HOSTILE}<script>alert(2)</script>",
        default=False,
        allowed_groups=["ml-platform"],
    )
    hostile["images"][0]["display_name"] = HOSTILE
    with start_hub(tmp_path_factory.mktemp("rights"), {"profiles": [*profiles, hostile]}) as hub:
        yield hub


def sign_in(page: Page, hub: RunningHub, user: str, password: str = USER_PASSWORD) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    expect(page.locator("input[name=profile]").first).to_be_visible()


def profile_card(page: Page, slug: str) -> Locator:
    return page.locator(f".kumohub-profile[data-profile={slug}]")


def test_gpu_profile_is_absent_without_rights(page: Page, rights_hub: RunningHub) -> None:
    sign_in(page, rights_hub, "alice")
    expect(page.locator("input[name=profile][value=cpu-small]")).to_be_checked()
    expect(page.locator("input[name=profile][value=gpu-a10g]")).to_have_count(0)
    expect(page.locator(".kumohub-gpu")).to_have_count(0)
    expect(page.get_by_text("GPU 1× A10G")).to_have_count(0)


def test_gpu_profile_is_offered_with_badge_and_cost(
    page: Page, rights_hub: RunningHub, artifacts_dir: Path
) -> None:
    sign_in(page, rights_hub, "bob")
    card = profile_card(page, "gpu-a10g")
    expect(card).to_be_visible()
    expect(card.locator(".kumohub-gpu")).to_have_text("GPU 1× NVIDIA A10G")
    expect(card.locator(".kumohub-cost")).to_have_text("$1.21/hour")
    expect(card).to_contain_text("3–4 CPU · 14G–16G memory · 8G shared memory")
    expect(page.locator("input[name=profile][value=cpu-odd]")).to_have_count(0)

    page.check("input[name=profile][value=gpu-a10g]")
    expect(card).to_have_class("kumohub-profile kumohub-selected")
    page.screenshot(path=str(artifacts_dir / "spawn-form-gpu.png"), full_page=True)

    page.click("form#spawn_form button[type=submit], form#spawn_form input[type=submit]")
    expect(page.locator(".spawn-error-msg")).to_contain_text(
        "needs 1 GPU(s) and this machine has 0. Choose a CPU profile."
    )


def test_html_in_display_strings_shows_as_text(page: Page, rights_hub: RunningHub) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    sign_in(page, rights_hub, "admin", ADMIN_PASSWORD)
    card = profile_card(page, "cpu-odd")
    expect(card.locator("label.kumohub-title")).to_have_text(HOSTILE)
    expect(card).to_contain_text("<script>alert(2)</script>")
    expect(page.locator("img[src=x]")).to_have_count(0)
    page.check("input[name=profile][value=cpu-odd]")
    expect(card.locator("select[name=image] option").first).to_contain_text(HOSTILE)
    assert dialogs == []
