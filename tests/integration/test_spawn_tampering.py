"""Tampered and malformed spawn requests, through the real hub, each refused leaving no trace.

Every case goes to a running KumoHub (local mode) as a signed-in user would send it: the
REST API (`POST /hub/api/users/<name>/server[s/<server>]` with a JSON body), the spawn form
(`POST /hub/spawn/<name>[/<server>]`) or spawn query arguments. Each must answer 400 with a
message naming the problem, and afterwards:

- no single-user server process exists for the user,
- no server of the user is ready or pending,
- the user's server records are exactly what they were (no new named server),
- every server's saved options (what the form pre-selects and a bare spawn reuses) are
  unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.support.client import HubClient, error_message
from tests.support.hub import ADMIN_PASSWORD, USER_PASSWORD, RunningHub
from tests.support.processes import server_processes, wait_until

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kumohub"
ALICE_DEFAULT = {"profile": "cpu-small", "image": "pytorch-cpu"}
ALICE_KEEP = {"profile": "cpu-large", "image": "datascience"}
NOT_AVAILABLE = "does not exist or is not available to you"
NO_GPU = "needs 1 GPU(s) and this machine has 0"


@dataclass
class Case:
    """One tampered request: who sends it, how, to which server, and what the 400 says."""

    id: str
    user: str
    kind: str  # "api" (JSON body), "raw" (body bytes as given), "form" or "query"
    payload: Any
    message: str
    server: str = ""
    # A step the user takes first (e.g. opening the form of a new named server).
    before: Callable[[HubClient], Any] | None = field(default=None, repr=False)


def open_form(server: str) -> Callable[[HubClient], Any]:
    return lambda client: client.spawn_form(server)


CASES = [
    # -- unknown or forbidden profiles and choices -------------------------------------
    Case("unknown-profile", "alice", "api", {"profile": "no-such-profile"}, NOT_AVAILABLE),
    Case("profile-outside-groups", "alice", "api", {"profile": "gpu-a10g"}, NOT_AVAILABLE),
    Case(
        "profile-outside-groups-named",
        "alice",
        "api",
        {"profile": "gpu-a10g"},
        NOT_AVAILABLE,
        server="fresh",
    ),
    Case(
        "unknown-choice",
        "alice",
        "api",
        {"profile": "cpu-small", "image": "no-such-image"},
        "image 'no-such-image' does not exist in profile 'cpu-small'",
    ),
    Case(
        "choice-of-another-profile",
        "alice",
        "api",
        {"profile": "cpu-large", "image": "pytorch-cpu"},
        "image 'pytorch-cpu' does not exist in profile 'cpu-large'",
        server="keep",
    ),
    Case(
        "look-alike-profile-slug",
        "alice",
        "api",
        {"profile": "cpu\u2010small"},  # Unicode hyphen
        NOT_AVAILABLE,
    ),
    Case("fullwidth-profile-slug", "alice", "api", {"profile": "\uff43pu-small"}, NOT_AVAILABLE),
    # -- extra keys and wrong shapes ---------------------------------------------------
    Case(
        "extra-key",
        "alice",
        "api",
        {"profile": "cpu-small", "cpu_limit": 64},
        "unknown spawn option(s): 'cpu_limit'",
    ),
    Case(
        "kubespawner-override",
        "alice",
        "api",
        {"profile": "cpu-small", "kubespawner_override": {"image": "evil/miner:1"}},
        "unknown spawn option(s): 'kubespawner_override'",
        server="fresh",
    ),
    Case(
        "key-in-other-case",
        "alice",
        "api",
        {"Profile": "cpu-small"},
        "unknown spawn option(s): 'Profile'",
    ),
    Case(
        "thousands-of-keys",
        "alice",
        "api",
        {f"key{i:05}": i for i in range(5000)},
        "and 4995 more",
    ),
    Case("profile-list", "alice", "api", {"profile": ["cpu-small"]}, "not an array"),
    Case("profile-number", "alice", "api", {"profile": 1}, "'profile' must be a string"),
    Case("profile-null", "alice", "api", {"profile": None}, "not null", server="keep"),
    Case("profile-object", "alice", "api", {"profile": {"slug": "cpu-small"}}, "not an object"),
    Case("profile-boolean", "alice", "api", {"profile": True}, "not a boolean"),
    Case("image-number", "alice", "api", {"profile": "cpu-small", "image": 7}, "not a number"),
    Case("empty-profile", "alice", "api", {"profile": ""}, "'profile' must not be empty"),
    Case(
        "empty-custom-image",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": ""},
        "'custom_image' must not be empty",
    ),
    Case(
        "huge-value",
        "alice",
        "api",
        {"profile": "cpu-small", "image": "x" * 100_000},
        "at most 512 are allowed",
    ),
    Case("missing-profile", "alice", "api", {"image": "datascience"}, "'profile' is required"),
    Case(
        "newline-in-slug",
        "alice",
        "api",
        {"profile": "cpu-small\n"},
        "contains control or invisible characters",
    ),
    Case("array-body", "alice", "api", [{"profile": "cpu-small"}], "not an array"),
    Case("array-body-named", "alice", "api", [{"profile": "cpu-small"}], "not an array", "fresh"),
    Case("string-body", "alice", "api", "cpu-small", "must be a JSON object, not a string"),
    Case("number-body", "alice", "api", 42, "must be a JSON object, not a number", "keep"),
    Case(
        "nested-deep",
        "alice",
        "api",
        {"profile": json.loads("[" * 200 + "]" * 200)},
        "not an array",
    ),
    Case("truncated-json", "alice", "raw", b'{"profile": ', "the body is not JSON", "fresh"),
    Case("not-utf8", "alice", "raw", b'{"profile": "\xff"}', "not UTF-8 text", "fresh"),
    # -- free-text images -----------------------------------------------------------------
    Case(
        "custom-image-without-free-field",
        "alice",
        "api",
        {"profile": "cpu-small", "custom_image": f"{ECR}/x:1"},
        "profile 'cpu-small' does not accept a custom image",
    ),
    Case(
        "custom-image-outside-groups",
        "bob",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1"},
        "profile 'gpu-a10g' does not accept a custom image",
    ),
    Case(
        "image-and-custom-image",
        "admin",
        "api",
        {"profile": "gpu-a10g", "image": "pytorch", "custom_image": f"{ECR}/x:1"},
        "give either 'image' or 'custom_image', not both",
    ),
    Case(
        "custom-image-suffix-after-semicolon",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1; evil/image"},
        "is not allowed: it must be an image reference that matches",
    ),
    Case(
        "custom-image-suffix-after-space",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1 evil/image"},
        "is not allowed",
        server="fresh",
    ),
    Case(
        "custom-image-newline",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1\nevil/image"},
        "contains control or invisible characters",
    ),
    Case(
        "custom-image-trailing-newline",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1\n"},
        "contains control or invisible characters",
    ),
    Case(
        "custom-image-cyrillic-o",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/t\u043e\u043el:1"},
        "is not allowed",
    ),
    Case(
        "custom-image-zero-width-space",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/tool\u200b:1"},
        "contains control or invisible characters",
    ),
    Case(
        "custom-image-other-registry-prefix",
        "admin",
        "api",
        {"profile": "gpu-a10g", "custom_image": f"evil.example.com/{ECR}/x:1"},
        "is not allowed",
    ),
    # -- the spawn form -------------------------------------------------------------------
    Case("form-unknown-profile", "alice", "form", [("profile", "nope")], NOT_AVAILABLE),
    Case("form-profile-outside-groups", "alice", "form", [("profile", "gpu-a10g")], NOT_AVAILABLE),
    Case(
        "form-repeated-field",
        "alice",
        "form",
        [("profile", "cpu-small"), ("profile", "cpu-large")],
        "form field 'profile' must be given exactly once",
    ),
    Case(
        "form-extra-field",
        "alice",
        "form",
        [("profile", "cpu-small"), ("mem_limit", "512G")],
        "unknown form field 'mem_limit'",
    ),
    Case(
        "form-choice-of-another-profile",
        "alice",
        "form",
        [("profile", "cpu-large"), ("image", "pytorch-cpu")],
        "image 'pytorch-cpu' does not exist in profile 'cpu-large'",
    ),
    Case(
        "form-custom-image-without-free-field",
        "alice",
        "form",
        [("profile", "cpu-small"), ("image", "datascience"), ("custom_image", f"{ECR}/x:1")],
        "does not accept a custom image",
    ),
    Case(
        "form-new-named-server",
        "alice",
        "form",
        [("profile", "gpu-a10g"), ("image", "pytorch")],
        NOT_AVAILABLE,
        server="fresh",
    ),
    Case(
        "query-arguments",
        "alice",
        "query",
        {"profile": "gpu-a10g"},
        NOT_AVAILABLE,
        server="fresh",
    ),
    Case(
        "api-after-opening-a-new-form",
        "alice",
        "api",
        {"profile": "cpu-small", "image": ["datascience"]},
        "not an array",
        server="draft",
        before=open_form("draft"),
    ),
    # -- allowed, but this machine has no GPU ----------------------------------------------
    Case("gpu-without-gpu", "bob", "api", {"profile": "gpu-a10g"}, NO_GPU),
    Case("gpu-without-gpu-named", "bob", "api", {"profile": "gpu-a10g"}, NO_GPU, "gpu-temp"),
    Case(
        "gpu-form-without-gpu-named",
        "bob",
        "form",
        [("profile", "gpu-a10g"), ("image", "pytorch")],
        NO_GPU,
        server="gpu-temp",
    ),
]


def signed_in(hub: RunningHub, user: str) -> HubClient:
    client = hub.client()
    password = ADMIN_PASSWORD if user == "admin" else USER_PASSWORD
    assert client.login(user, password).status_code == 302
    return client


def records(client: HubClient) -> dict[str, Any]:
    """Every server record of the user (stopped ones too) with its saved options."""
    response = client.api("GET", f"/users/{client.user}", params={"include_stopped_servers": 1})
    assert response.status_code == 200, response.text
    return response.json()["servers"]


def saved(client: HubClient) -> dict[str, Any]:
    return {name: server["user_options"] for name, server in records(client).items()}


@pytest.fixture(scope="module")
def clients(hub: RunningHub) -> Iterator[dict[str, HubClient]]:
    """alice with a stopped default server and a stopped named server `keep`; bob; admin."""
    users = {name: signed_in(hub, name) for name in ("alice", "bob", "admin")}
    alice = users["alice"]
    assert alice.api_spawn(ALICE_DEFAULT).status_code in (201, 202)
    assert alice.api_spawn(ALICE_KEEP, server="keep").status_code in (201, 202)
    for server in ("", "keep"):
        alice.wait_ready(server)
    for server in ("", "keep"):
        alice.stop(server)
        alice.wait_stopped(server)
    for client in users.values():
        client.spawn_form()  # as a person would, before tampering
    yield users


def send(client: HubClient, case: Case) -> requests.Response:
    if case.before is not None:
        case.before(client)
    if case.kind == "form":
        return client.submit_spawn_form(case.payload, case.server)
    if case.kind == "query":
        return client.session.get(client.spawn_url(case.server), params=case.payload, timeout=30)
    suffix = f"/servers/{case.server}" if case.server else "/server"
    body = case.payload if case.kind == "raw" else json.dumps(case.payload).encode()
    headers = {"Content-Type": "application/json"}
    return client.api("POST", f"/users/{client.user}{suffix}", data=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_tampered_spawn_is_refused_and_leaves_nothing(
    clients: dict[str, HubClient], hub: RunningHub, case: Case
) -> None:
    client = clients[case.user]
    before = saved(client)

    response = send(client, case)

    assert response.status_code == 400, response.text[:2000]
    assert case.message in error_message(response), error_message(response)[:2000]
    for server in {case.server, "", *before}:
        assert server_processes(case.user, server, home=hub.state / "home" / case.user) == []
    after = records(client)
    assert not [name for name, model in after.items() if model["ready"] or model["pending"]]
    assert {name: model["user_options"] for name, model in after.items()} == before


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert {case.kind for case in CASES} == {"api", "raw", "form", "query"}


def test_saved_choice_still_drives_the_form_and_a_bare_spawn(
    clients: dict[str, HubClient], hub: RunningHub
) -> None:
    """After the whole corpus: the form pre-selects, and a bodiless spawn reuses, alice's
    last real choice; the spawn reports its progress while it runs."""
    alice = clients["alice"]
    form = alice.spawn_form().text
    assert 'value="cpu-small" checked' in form
    assert '<option value="pytorch-cpu" selected>' in form

    starter = signed_in(hub, "alice")
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(starter.api, "POST", "/users/alice/server")
        wait_until(
            lambda: (alice.server_model() or {}).get("pending") == "spawn" or started.done(),
            timeout=30,
            what="the spawn to be pending",
        )
        messages = progress_messages(alice)
        assert started.result().status_code in (201, 202)
    model = alice.wait_ready()
    assert model["user_options"] == ALICE_DEFAULT
    assert "Preparing your home and team folders for CPU small" in messages
    assert "Starting JupyterLab (CPU small)" in messages
    alice.stop()
    alice.wait_stopped()


def progress_messages(client: HubClient, server: str = "") -> list[str]:
    """The event stream JupyterHub's progress page shows while a server starts."""
    suffix = f"/servers/{server}/progress" if server else "/server/progress"
    messages = []
    with client.api("GET", f"/users/{client.user}{suffix}", stream=True, timeout=120) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            messages.append(event.get("message", ""))
            if event.get("ready") or event.get("failed"):
                break
    return messages
