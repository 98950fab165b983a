"""The images install exactly the locked stack, the same one the tests run against."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "images" / "requirements"
# What the z2jh 4.4.0 chart ships; the platform is pinned to it.
CHART_PINS = {
    "jupyterhub": "5.5.0",
    "jupyterhub-kubespawner": "7.0.0",
    "oauthenticator": "17.4.0",
    "kubernetes-asyncio": "36.1.0",
    "jupyterhub-idle-culler": "1.4.0",
}
USER_PINS = {"jupyterlab": "4.5.8", "jupyter-server": "2.19.0", "jupyter-server-proxy": "4.4.0"}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            found[match[1].lower().replace("_", "-")] = match[2]
    return found


def test_hub_lock_matches_the_chart() -> None:
    hub = pins(LOCKS / "hub.txt")
    for name, version in CHART_PINS.items():
        assert hub.get(name) == version, name


@pytest.mark.parametrize("lock", ["user.txt", "user-gpu.txt"])
def test_user_locks_carry_the_pinned_user_stack(lock: str) -> None:
    user = pins(LOCKS / lock)
    for name, version in USER_PINS.items():
        assert user.get(name) == version, f"{lock}: {name}"


def test_gpu_image_adds_to_the_cpu_image_without_changing_it() -> None:
    cpu, gpu = pins(LOCKS / "user.txt"), pins(LOCKS / "user-gpu.txt")
    changed = {name for name in cpu if name in gpu and cpu[name] != gpu[name]}
    assert not changed
    assert "torch" in gpu


def test_tests_run_the_versions_the_images_ship() -> None:
    dev = pins(REPO / "requirements" / "dev.txt")
    user = pins(LOCKS / "user.txt")
    for name in [*CHART_PINS, *USER_PINS]:
        expected = CHART_PINS.get(name) or USER_PINS[name]
        assert dev.get(name) == expected, name
    drift = {
        name
        for name in ("jupyterlab", "jupyter-server", "ipykernel", "pyarrow", "duckdb", "boto3")
        if name in user and dev.get(name) != user[name]
    }
    assert not drift, f"dev lock and user image lock differ for {sorted(drift)}"


@pytest.mark.parametrize("dockerfile", ["hub/Dockerfile", "user/Dockerfile"])
def test_dockerfiles_install_from_the_locks_and_run_unprivileged(dockerfile: str) -> None:
    text = (REPO / "images" / dockerfile).read_text()
    assert "images/requirements/" in text
    assert re.search(r"^USER (?!root)", text, re.M), "the image must end as a non-root user"
    if dockerfile == "user/Dockerfile":
        assert "PYTHONNOUSERSITE=1" in text and "JUPYTER_PREFER_ENV_PATH=1" in text
        for copied in re.findall(r"/src/kumohub/(images/user/[\w.\-]+)", text):
            assert (REPO / copied).exists(), copied
