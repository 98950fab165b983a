"""How users sign in: a shared password on one machine, the company's OIDC provider in production.

Secrets (passwords, client secrets) never live in the settings document: it names the
environment variable or file that holds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, Field, model_validator

from ._base import Strict


class SharedPasswordAuth(Strict):
    """JupyterHub's shared-password authenticator, for local mode."""

    kind: Literal["shared-password"] = "shared-password"
    user_password_env: str = "KUMOHUB_USER_PASSWORD"  # noqa: S105 (a variable name)
    admin_password_env: str = "KUMOHUB_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


_LOOPBACK_HOSTS = ("localhost", "::1")


def check_provider_url(value: str) -> str:
    """Tokens and client secrets travel over these URLs: HTTPS, except to this machine."""
    parsed = urlparse(value)
    host = parsed.hostname or ""
    if parsed.scheme == "https" and host:
        return value
    if parsed.scheme == "http" and (host in _LOOPBACK_HOSTS or host.startswith("127.")):
        return value
    raise ValueError(f"must be an https:// URL (http:// only for loopback hosts), got {value!r}")


URL = Annotated[str, AfterValidator(check_provider_url)]
"""An identity-provider or hub URL that is safe to send credentials to."""

# The endpoints the hub cannot work without, unless `issuer` lets it discover them.
_ENDPOINTS = ("authorize_url", "token_url", "userdata_url")


class OIDCAuth(Strict):
    """GenericOAuthenticator against any standard OpenID Connect provider.

    Endpoints come from `issuer` (its discovery document, read once when the hub starts) or
    are given one by one; given ones win over discovered ones. Client credentials come from
    environment variables or files (a mounted Kubernetes Secret), never from this document.
    """

    kind: Literal["oidc"] = "oidc"
    issuer: URL | None = Field(
        default=None, description="Read <issuer>/.well-known/openid-configuration at start."
    )
    authorize_url: URL | None = None
    token_url: URL | None = None
    userdata_url: URL | None = None
    claims_from: Literal["userinfo", "id_token"] = Field(
        default="userinfo",
        description="Where user claims come from: the userinfo endpoint, or the ID token "
        "(needed where groups are only in the ID token, e.g. Amazon Cognito).",
    )
    logout_redirect_url: URL | None = Field(
        default=None, description="After hub sign-out, send the browser here (end-session)."
    )
    client_id_env: str = "KUMOHUB_OIDC_CLIENT_ID"
    client_id_file: Path | None = None
    client_secret_env: str = "KUMOHUB_OIDC_CLIENT_SECRET"  # noqa: S105 (a variable name)
    client_secret_file: Path | None = None
    token_auth_method: Literal["client_secret_basic", "client_secret_post"] = Field(
        default="client_secret_basic",
        description="How the hub presents its client secret to the token endpoint "
        "(OIDC's default is HTTP Basic; some providers register clients for POST).",
    )
    callback_url: URL | None = Field(
        default=None, description="Default: derived from the request, <hub>/hub/oauth_callback."
    )
    login_service: str = Field(
        default="your company account", min_length=1, description="'Sign in with ...' button."
    )
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = Field(default="preferred_username", min_length=1)
    groups_claim: str = Field(default="groups", min_length=1)
    allowed_groups: tuple[str, ...] = ()
    allow_all_users: bool = Field(
        default=False, description="Let every account at the provider in, whatever its groups."
    )
    admin_groups: tuple[str, ...] = ()
    refresh_pre_spawn: bool = True
    auth_refresh_age: int = Field(
        default=300, ge=0, description="Seconds between re-checks of a user with the provider."
    )
    sign_in_timeout: int = Field(
        default=600, ge=30, description="Seconds a sign-in may take at the provider."
    )

    @model_validator(mode="after")
    def _complete(self) -> OIDCAuth:
        if "openid" not in self.scopes:
            raise ValueError("scopes must include 'openid'")
        if self.claims_from == "id_token" and self.userdata_url:
            raise ValueError("userdata_url is not used when claims_from is 'id_token'; remove it")
        needed = [name for name in _ENDPOINTS if name != "userdata_url" or self.reads_userinfo]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing and self.issuer is None:
            raise ValueError(
                f"missing {', '.join(missing)}: set them, or set issuer to read them from the "
                "provider's discovery document"
            )
        if not self.allowed_groups and not self.allow_all_users:
            raise ValueError(
                "allowed_groups is empty: name the provider groups whose members may sign in, "
                "or set allow_all_users: true"
            )
        if self.allowed_groups and self.allow_all_users:
            raise ValueError("allowed_groups has no effect with allow_all_users: true; pick one")
        return self

    @property
    def reads_userinfo(self) -> bool:
        return self.claims_from == "userinfo"


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
