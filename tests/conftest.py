"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hub import RunningHub, start_hub

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and logs worth keeping after the run (README images come from here)."""
    path = Path(os.environ.get("KUMOHUB_TEST_ARTIFACTS", REPO / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """A KumoHub in local mode with the example settings, shared by one test module."""
    with start_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running
