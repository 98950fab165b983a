"""chart-values/ is what GitOps deploys: it must pass the z2jh 4.4.0 chart's schema and ours."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kumohub.settings import parse_settings
from tests.support.hub import deep_merge

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "chart-values" / "values.yaml"


def chart_reference() -> Path:
    """The chart's schema and defaults: $Z2JH_CHART_REFERENCE or ../shared/reference/z2jh."""
    folder = Path(os.environ.get("Z2JH_CHART_REFERENCE", REPO.parent / "shared/reference/z2jh"))
    if not (folder / "values.schema.yaml").exists():
        if os.environ.get("CI"):
            pytest.fail(f"z2jh chart reference data missing in CI: {folder}")
        # Outside CI only (CI always has shared/ beside the clone, and fails above).
        pytest.skip(
            f"no z2jh chart schema at {folder}: set Z2JH_CHART_REFERENCE to a folder with "
            "values.schema.yaml and values.yaml (helm pull jupyterhub/jupyterhub "
            "--version 4.4.0 --untar)"
        )
    return folder


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def validate_against_chart(values: dict[str, Any]) -> None:
    folder = chart_reference()
    schema = yaml.safe_load((folder / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((folder / "values.yaml").read_text())
    jsonschema.validate(deep_merge(defaults, values), schema)


def test_values_pass_the_chart_schema(ours: dict[str, Any]) -> None:
    validate_against_chart(ours)


def test_the_schema_check_catches_a_typo(ours: dict[str, Any]) -> None:
    broken = deep_merge(ours, {"singleuser": {"storrage": {"type": "none"}}})
    with pytest.raises(jsonschema.ValidationError, match="storrage"):
        validate_against_chart(broken)


def test_custom_kumohub_is_valid_kubernetes_settings(ours: dict[str, Any]) -> None:
    settings = parse_settings(ours["custom"]["kumohub"], "chart-values custom.kumohub")
    assert settings.mode == "kubernetes"
    assert settings.auth.kind == "oidc"
    assert any(profile.gpu for profile in settings.profiles)
    assert settings.query.engine == "athena"


def test_chart_leaves_culling_and_storage_to_kumohub(ours: dict[str, Any]) -> None:
    # One source of truth: the chart's culler and home volumes would duplicate ours.
    assert ours["cull"]["enabled"] is False
    assert ours["singleuser"]["storage"]["type"] == "none"
    assert "configure(c, settings_from_chart())" in ours["hub"]["extraConfig"]["00-kumohub"]


def test_storage_manifests_are_valid_and_match_the_settings(ours: dict[str, Any]) -> None:
    documents = list(yaml.safe_load_all((REPO / "chart-values/storage.yaml").read_text()))
    for document in documents:
        for version in ("1.32", "1.33", "1.34"):
            kubernetes_validate.validate(document, version, strict=True)
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    settings = parse_settings(ours["custom"]["kumohub"], "chart-values custom.kumohub")
    assert ("StorageClass", settings.storage.home.storage_class) in names
    claims = [settings.storage.team, *settings.storage.datasets]
    for volume in claims:
        assert volume is not None
        assert ("PersistentVolumeClaim", volume.claim_name) in names
