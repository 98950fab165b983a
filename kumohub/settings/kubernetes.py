"""Kubernetes-only settings: namespace-level identity and scheduling."""

from __future__ import annotations

from pydantic import Field

from ._base import Strict


class KubernetesSettings(Strict):
    """How user pods get AWS access (IRSA) and which defaults they share."""

    service_account_by_group: dict[str, str] = Field(
        default_factory=dict,
        description="Group -> service account annotated with an IAM role (IRSA).",
    )
    default_service_account: str | None = Field(
        default=None, description="For users in none of the mapped groups; None: no AWS role."
    )
    uid: int = 1000
    gid: int = 100
