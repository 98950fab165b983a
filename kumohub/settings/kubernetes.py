"""Kubernetes-only settings (identity, namespace, pod user) and the API's naming rules.

The naming rules sit here, in the core, because both the settings schema (claim and
service account names an administrator writes) and the KubeSpawner subclass (names derived
from usernames) must agree with what the API server would accept.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ._base import Strict

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", re.ASCII)


def is_dns_label(value: str) -> bool:
    """RFC 1123 label: volume names, namespaces, most object names."""
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: str) -> bool:
    """RFC 1123 subdomain: pod, claim and service account names."""
    return 0 < len(value) <= 253 and all(is_dns_label(part) for part in value.split("."))


def is_label_value(value: str) -> bool:
    """A label value: empty, or up to 63 letters, digits, '-', '_' or '.' inside."""
    return value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)


def is_label_key(value: str) -> bool:
    """A label or annotation key: optional DNS-subdomain prefix, '/', then a name."""
    prefix, _, name = value.rpartition("/")
    if prefix and not is_dns_subdomain(prefix):
        return False
    return 0 < len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def check_dns_subdomain(value: str) -> str:
    if not is_dns_subdomain(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes name: use lowercase letters, digits, '-' and "
            "'.', starting and ending with a letter or digit (at most 253 characters)"
        )
    return value


class KubernetesSettings(Strict):
    """How user pods are identified, who they run as and how they get AWS access (IRSA)."""

    namespace: str | None = Field(
        default=None,
        description="Namespace of the user pods. None: the chart's POD_NAMESPACE (the hub's).",
    )
    service_account_by_group: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Group -> service account annotated with an IAM role (IRSA). When a user is in "
            "several of these groups, the first one listed here wins."
        ),
    )
    default_service_account: str | None = Field(
        default=None, description="For users in none of the mapped groups; None: no AWS role."
    )
    uid: int = Field(default=1000, ge=1, description="Must match the EFS storage class's uid.")
    gid: int = Field(default=100, ge=0, description="Must match the EFS storage class's gid.")

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str | None) -> str | None:
        if value is not None and not is_dns_label(value):
            raise ValueError(f"{value!r} is not a valid namespace name")
        return value

    @field_validator("service_account_by_group")
    @classmethod
    def _service_accounts_are_names(cls, value: dict[str, str]) -> dict[str, str]:
        for group, account in value.items():
            if not group:
                raise ValueError("group names must not be empty")
            check_dns_subdomain(account)
        return value

    @field_validator("default_service_account")
    @classmethod
    def _default_account_is_name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns_subdomain(value)
