"""How users sign in: a shared password on one machine, the company's OIDC provider in production.

Secrets (passwords, client secrets) never live in the settings document: it names the
environment variable or file that holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ._base import Strict


class SharedPasswordAuth(Strict):
    """JupyterHub's shared-password authenticator, for local mode."""

    kind: Literal["shared-password"] = "shared-password"
    user_password_env: str = "KUMOHUB_USER_PASSWORD"  # noqa: S105 (a variable name)
    admin_password_env: str = "KUMOHUB_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


class OIDCAuth(Strict):
    """GenericOAuthenticator against any standard OpenID Connect provider."""

    kind: Literal["oidc"] = "oidc"
    authorize_url: str
    token_url: str
    userdata_url: str
    logout_redirect_url: str | None = None
    client_id_env: str = "KUMOHUB_OIDC_CLIENT_ID"
    client_secret_env: str = "KUMOHUB_OIDC_CLIENT_SECRET"  # noqa: S105 (a variable name)
    client_secret_file: Path | None = None
    callback_url: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    allowed_groups: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    refresh_pre_spawn: bool = True
    auth_refresh_age: int = Field(default=300, ge=0)


AuthSettings = SharedPasswordAuth | OIDCAuth


class Groups(Strict):
    """Static group membership, used when the identity provider does not send groups."""

    members: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_nonempty(self) -> Groups:
        for group in self.members:
            if not group:
                raise ValueError("group names must not be empty")
        return self
