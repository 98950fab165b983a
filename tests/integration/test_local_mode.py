"""Local mode end to end: the real hub, proxy and single-user servers on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.client import HubClient, error_message
from tests.support.hub import USER_PASSWORD, RunningHub, start_hub
from tests.support.processes import server_processes, wait_until


def signed_in(hub: RunningHub, user: str) -> HubClient:
    client = hub.client()
    response = client.login(user, USER_PASSWORD)
    assert response.status_code == 302, response.text
    return client


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sign_in_choose_profile_and_reach_lab(hub: RunningHub) -> None:
    alice = signed_in(hub, "alice")

    form = alice.spawn_form()
    assert form.status_code == 200
    assert 'value="cpu-small"' in form.text and 'value="cpu-large"' in form.text
    assert "gpu-a10g" not in form.text  # alice is not in gpu-users

    response = alice.submit_spawn_form([("profile", "cpu-small"), ("image", "datascience")])
    assert response.status_code == 200, error_message(response)
    model = alice.wait_ready()
    assert model["user_options"] == {"profile": "cpu-small", "image": "datascience"}

    lab = alice.open_server()
    assert lab.status_code == 200 and lab.url.endswith("/user/alice/lab")
    assert "JupyterLab" in lab.text

    status = alice.server_api("GET", "api/status")
    assert status.status_code == 200 and "kernels" in status.json()

    home = hub.state / "home" / "alice"
    assert home.is_dir()
    assert (home / "team").resolve() == (hub.state / "team").resolve()

    assert alice.stop().status_code in (202, 204)
    alice.wait_stopped()


def test_named_server_beside_the_default_one(hub: RunningHub) -> None:
    bob = signed_in(hub, "bob")
    assert bob.api_spawn({"profile": "cpu-small", "image": "datascience"}).status_code in (
        201,
        202,
    )
    bob.wait_ready()
    response = bob.api_spawn({"profile": "cpu-small", "image": "pytorch-cpu"}, server="scratch")
    assert response.status_code in (201, 202), response.text
    bob.wait_ready("scratch")

    bob.open_server("scratch")
    bob.open_server()
    assert bob.server_api("GET", "api/status", server="scratch").status_code == 200
    assert bob.server_api("GET", "api/status").status_code == 200
    servers = bob.api("GET", "/users/bob").json()["servers"]
    assert set(servers) == {"", "scratch"}

    for name in ("scratch", ""):
        bob.stop(name)
        bob.wait_stopped(name)
    assert bob.open_server("scratch", "api/status").url.startswith(f"{hub.url}/hub/")


def test_wrong_password_is_refused(hub: RunningHub) -> None:
    client = hub.client()
    response = client.login("alice", "not-the-password")
    assert response.status_code == 403
    assert "Invalid username or password" in error_message(response)
    assert client.api("GET", "/users/alice").status_code == 403


def test_unknown_profile_is_a_clear_error_and_starts_nothing(hub: RunningHub) -> None:
    alice = signed_in(hub, "alice")
    response = alice.submit_spawn_form([("profile", "no-such-profile"), ("image", "x")])
    assert response.status_code == 400
    assert "profile 'no-such-profile' does not exist" in error_message(response)

    response = alice.api_spawn({"profile": "no-such-profile"})
    assert response.status_code == 400
    assert "profile 'no-such-profile' does not exist" in response.json()["message"]

    model = alice.server_model()
    assert model is None or not (model["ready"] or model["pending"])
    assert server_processes("alice", home=hub.state / "home" / "alice") == []


def test_idle_server_is_culled(tmp_path: Path) -> None:
    with start_hub(tmp_path, {"culling": {"timeout": 6, "every": 2}}) as hub:
        alice = signed_in(hub, "alice")
        assert alice.api_spawn({"profile": "cpu-small"}).status_code in (201, 202)
        alice.wait_ready()
        [pid] = server_processes("alice", home=hub.state / "home" / "alice")
        wait_until(lambda: alice.server_model() is None, timeout=60, what="the culler")
        wait_until(lambda: not pid_alive(pid), timeout=20, what="the server process to exit")
        assert "Culling server alice" in hub.log() or "culling server" in hub.log().lower()


def test_malformed_settings_stop_start_up_with_the_field_named(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "profiles:\n"
        "  - slug: Bad Slug\n"
        "    display_name: x\n"
        "    images: [{slug: a, display_name: A, image: img}]\n"
        "    resources: {cpu_limit: lots}\n"
        "culling: {timout: 5}\n"
    )
    with pytest.raises(RuntimeError) as failure, start_hub(tmp_path, settings_path=settings):
        pass
    message = str(failure.value)
    assert "hub exited with 2" in message
    assert "profiles[0].slug" in message
    assert "profiles[0].resources.cpu_limit" in message
    assert "culling.timout: unknown key" in message
    assert "Traceback" not in message
    assert not (tmp_path / "state").exists()
