"""The settings document: typed, validated, and clear about what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kumohub.settings import SettingsError, load_settings, parse_settings, quantity_bytes

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "hub_config" / "local-settings.yaml"

MINIMAL_PROFILE = {
    "slug": "cpu",
    "display_name": "CPU",
    "images": [{"slug": "ds", "display_name": "DS", "image": "example/ds:1"}],
}


def problems(data: object) -> str:
    with pytest.raises(SettingsError) as failure:
        parse_settings(data, "test.yaml")
    return str(failure.value)


def test_example_settings_load_and_resolve_the_state_dir() -> None:
    settings = load_settings(EXAMPLE)
    assert {p.slug for p in settings.profiles} == {"cpu-small", "cpu-large", "gpu-a10g"}
    assert settings.storage.local.root.resolve() == (REPO / ".kumohub-state").resolve()
    assert settings.groups_of("bob") == {"data-science", "gpu-users"}


def test_unknown_keys_are_errors_with_their_path() -> None:
    message = problems({"profiles": [dict(MINIMAL_PROFILE, colour="red")], "cullin": {}})
    assert "profiles[0].colour: unknown key" in message
    assert "cullin: unknown key" in message


def test_wrong_types_and_values_name_the_field() -> None:
    profile = dict(MINIMAL_PROFILE, slug="Not A Slug", resources={"cpu_limit": "lots"})
    message = problems({"profiles": [profile], "culling": {"timeout": -5}})
    assert "profiles[0].slug: must be 1-40 lowercase letters" in message
    assert "profiles[0].resources.cpu_limit:" in message
    assert "culling.timeout:" in message


def test_cross_field_rules() -> None:
    twice = [MINIMAL_PROFILE, MINIMAL_PROFILE]
    assert "profile slugs must be unique, repeated: cpu" in problems({"profiles": twice})
    greedy = dict(MINIMAL_PROFILE, resources={"mem_guarantee": "8G", "mem_limit": "4G"})
    assert "mem_guarantee is larger than mem_limit" in problems({"profiles": [greedy]})
    bad_pattern = dict(MINIMAL_PROFILE, free_image={"pattern": "(unclosed"})
    assert "profiles[0].free_image.pattern: is not a valid regular expression" in problems(
        {"profiles": [bad_pattern]}
    )
    athena = {"profiles": [MINIMAL_PROFILE], "query": {"engine": "athena"}}
    assert "the 'athena' section is missing" in problems(athena)


def test_profiles_are_required() -> None:
    assert "profiles: Field required" in problems({})
    assert "must be a mapping" in problems(["not", "a", "mapping"])


def test_auth_kind_selects_the_schema() -> None:
    oidc = {"kind": "oidc", "authorize_url": "https://idp/authorize"}
    message = problems({"profiles": [MINIMAL_PROFILE], "auth": oidc})
    assert "auth: missing token_url, userdata_url: set them, or set issuer" in message


def test_unreadable_or_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the settings file"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("profiles: [\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken)


def test_relative_paths_resolve_against_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "settings.yaml"
    path.parent.mkdir()
    data = {
        "profiles": [MINIMAL_PROFILE],
        "storage": {"local": {"root": "state"}},
        "query": {"duckdb": {"data_dir": "data"}},
    }
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    assert settings.storage.local.root == path.parent.resolve() / "state"
    assert settings.query.duckdb.data_dir == path.parent.resolve() / "data"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("512M", 512 * 10**6), ("4G", 4 * 10**9), ("8Gi", 8 * 2**30), ("1.5G", 1_500_000_000)],
)
def test_byte_quantities(quantity: str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected
