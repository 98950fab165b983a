"""Names and labels a pod or claim would be refused for, found before the API server sees them.

The schema check (kubernetes-validate) does not know the API server's naming rules; these
do, with the field each problem sits in, so a bad template or chart label fails the spawn
with a message an administrator can act on instead of an API error deep in KubeSpawner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tornado import web

from kumohub.settings.kubernetes import (
    is_dns_label,
    is_dns_subdomain,
    is_label_key,
    is_label_value,
)


def _label_problems(where: str, labels: Mapping[str, str] | None) -> list[str]:
    problems = []
    for key, value in (labels or {}).items():
        if not is_label_key(key):
            problems.append(f"{where}: {key!r} is not a valid label key")
        if not is_label_value(str(value)):
            problems.append(f"{where}[{key!r}]: {value!r} is not a valid label value")
    return problems


def _annotation_problems(where: str, annotations: Mapping[str, str] | None) -> list[str]:
    return [
        f"{where}: {key!r} is not a valid annotation key"
        for key in (annotations or {})
        if not is_label_key(key)
    ]


def api_form(obj: Any) -> Any:
    """A Kubernetes client model as the API sees it: camelCase keys, no unset fields."""
    if hasattr(obj, "openapi_types") and hasattr(obj, "attribute_map"):
        return {
            obj.attribute_map[attr]: api_form(getattr(obj, attr))
            for attr in obj.openapi_types
            if getattr(obj, attr) is not None
        }
    if isinstance(obj, Mapping):
        return {key: api_form(value) for key, value in obj.items() if value is not None}
    if isinstance(obj, list | tuple):
        return [api_form(item) for item in obj]
    return obj


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Names and labels of a pod or claim (API form) that the API server would refuse."""
    meta = manifest.get("metadata", {})
    spec = manifest.get("spec", {})
    problems = []
    name = meta.get("name", "")
    if not is_dns_subdomain(name):
        problems.append(f"metadata.name: {name!r} is not a valid object name")
    problems += _label_problems("metadata.labels", meta.get("labels"))
    problems += _annotation_problems("metadata.annotations", meta.get("annotations"))
    if manifest.get("kind") == "PersistentVolumeClaim":
        storage_class = spec.get("storageClassName")
        if storage_class is not None and not is_dns_subdomain(storage_class):
            problems.append(f"spec.storageClassName: {storage_class!r} is not a valid name")
        return problems
    account = spec.get("serviceAccountName")
    if account is not None and not is_dns_subdomain(account):
        problems.append(f"spec.serviceAccountName: {account!r} is not a valid name")
    problems += _label_problems("spec.nodeSelector", spec.get("nodeSelector"))
    for i, volume in enumerate(spec.get("volumes", [])):
        if not is_dns_label(volume.get("name", "")):
            problems.append(f"spec.volumes[{i}].name: {volume.get('name')!r} is not a valid name")
        claim = volume.get("persistentVolumeClaim")
        if claim is not None and not is_dns_subdomain(claim.get("claimName", "")):
            problems.append(
                f"spec.volumes[{i}].persistentVolumeClaim.claimName: "
                f"{claim.get('claimName')!r} is not a valid claim name"
            )
    for i, container in enumerate(spec.get("containers", [])):
        if not is_dns_label(container.get("name", "")):
            problems.append(f"spec.containers[{i}].name: {container.get('name')!r} is not valid")
    return problems


class InvalidManifestError(web.HTTPError):
    """KumoHub built an object the API server would refuse (a configuration problem)."""

    def __init__(self, kind: str, problems: Iterable[str]) -> None:
        message = f"KumoHub built an invalid {kind}: {'; '.join(problems)}"
        super().__init__(500, message)
        # JupyterHub shows only this attribute on the page of a failed spawn.
        self.jupyterhub_message = message
