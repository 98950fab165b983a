"""Authenticator wiring: shared password on one machine, OIDC (oauthenticator) in production."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub.crypto import KEY_ENV as CRYPT_KEY_ENV

from kumohub.settings import OIDCAuth, Settings, SettingsError, SharedPasswordAuth
from kumohub.settings.auth import check_provider_url

from .oidc import KumoOIDCAuthenticator

DISCOVERY_TIMEOUT = 10


def _secret_from_env(name: str, purpose: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SettingsError(f"auth: {purpose} is not set: export {name} before starting the hub")
    return value


def allowed_users(settings: Settings) -> set[str]:
    """Local mode: who may sign in (explicit list, else every group member and admin)."""
    if settings.hub.allowed_users:
        return set(settings.hub.allowed_users)
    members = {user for users in settings.groups.members.values() for user in users}
    return members | set(settings.hub.admin_users)


def configure_shared_password(c: Any, settings: Settings, auth: SharedPasswordAuth) -> None:
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = _secret_from_env(
        auth.user_password_env, "the shared user password"
    )
    admin_password = os.environ.get(auth.admin_password_env, "")
    if settings.hub.admin_users:
        admin_password = _secret_from_env(auth.admin_password_env, "the admin password")
    if admin_password:
        c.SharedPasswordAuthenticator.admin_password = admin_password
    c.Authenticator.allowed_users = allowed_users(settings)
    c.Authenticator.admin_users = set(settings.hub.admin_users)
    # Static membership from the settings document.
    c.JupyterHub.load_groups = {
        group: {"users": sorted(members)} for group, members in settings.groups.members.items()
    }


def _credential(file: Path | None, env: str, purpose: str, file_field: str) -> str:
    """A client credential from its file (a mounted Secret) or else its environment variable."""
    if file is None:
        return _secret_from_env(env, purpose)
    try:
        value = file.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"auth.{file_field}: cannot read {file}: {exc.strerror}") from None
    if not value:
        raise SettingsError(f"auth.{file_field}: {file} is empty")
    return value


@dataclass(frozen=True)
class ProviderEndpoints:
    authorize_url: str
    token_url: str
    userdata_url: str | None
    logout_redirect_url: str | None


def discovery_document(issuer: str) -> dict[str, Any]:
    """The provider's OpenID configuration, read once at start (oauthenticator has no discovery)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT) as response:  # noqa: S310
            document = json.load(response)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SettingsError(
            f"auth.issuer: cannot read the provider's discovery document {url}: {reason}. "
            "Check the issuer URL and that the hub can reach the provider, or set "
            "authorize_url, token_url and userdata_url instead."
        ) from None
    if not isinstance(document, dict):
        raise SettingsError(f"auth.issuer: {url} is not an OpenID configuration document")
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise SettingsError(
            f"auth.issuer: {url} names issuer {document.get('issuer')!r}, not {issuer!r}; "
            "use exactly the issuer the provider publishes"
        )
    return document


def provider_endpoints(auth: OIDCAuth) -> ProviderEndpoints:
    """Endpoints from the settings, completed from the issuer's discovery document if set."""
    document = discovery_document(auth.issuer) if auth.issuer else {}

    def endpoint(given: str | None, key: str, required: bool = True) -> str | None:
        value = given or document.get(key)
        if value is None:
            if required:
                raise SettingsError(f"auth.issuer: the discovery document has no {key}")
            return None
        try:
            return check_provider_url(str(value))
        except ValueError as exc:
            raise SettingsError(f"auth.issuer: discovered {key} {exc}") from None

    return ProviderEndpoints(
        authorize_url=str(endpoint(auth.authorize_url, "authorization_endpoint")),
        token_url=str(endpoint(auth.token_url, "token_endpoint")),
        userdata_url=(
            endpoint(auth.userdata_url, "userinfo_endpoint") if auth.reads_userinfo else None
        ),
        logout_redirect_url=endpoint(
            auth.logout_redirect_url, "end_session_endpoint", required=False
        ),
    )


def _require_crypt_key(c: Any) -> None:
    """auth_state (the tokens refresh needs) is stored encrypted: a key must exist."""
    if os.environ.get(CRYPT_KEY_ENV) or ("CryptKeeper" in c and "keys" in c.CryptKeeper):
        return
    raise SettingsError(
        f"auth: OIDC sign-in keeps the provider's tokens encrypted in the hub database: set "
        f"{CRYPT_KEY_ENV} to 32 random bytes in hex (openssl rand -hex 32), kept in a Secret"
    )


def _warn_ignored(settings: Settings) -> None:
    ignored = [
        name
        for name, value in (
            ("hub.admin_users", settings.hub.admin_users),
            ("hub.allowed_users", settings.hub.allowed_users),
            ("groups.members", settings.groups.members),
        )
        if value
    ]
    if ignored:
        logging.getLogger("JupyterHub").warning(
            "KumoHub: %s ignored with auth.kind 'oidc': who may sign in, who is admin and "
            "group membership come from the identity provider (auth.allowed_groups, "
            "auth.admin_groups)",
            ", ".join(ignored),
        )


def configure_oidc(c: Any, settings: Settings, auth: OIDCAuth) -> None:
    """KumoOIDCAuthenticator from the settings; nothing of the local shared-password setup."""
    _require_crypt_key(c)
    endpoints = provider_endpoints(auth)
    _warn_ignored(settings)
    c.JupyterHub.authenticator_class = KumoOIDCAuthenticator
    a = c.KumoOIDCAuthenticator
    a.client_id = _credential(
        auth.client_id_file, auth.client_id_env, "the OIDC client id", "client_id_file"
    )
    a.client_secret = _credential(
        auth.client_secret_file,
        auth.client_secret_env,
        "the OIDC client secret",
        "client_secret_file",
    )
    a.basic_auth = auth.token_auth_method == "client_secret_basic"  # noqa: S105 (a method)
    a.authorize_url = endpoints.authorize_url
    a.token_url = endpoints.token_url
    if endpoints.userdata_url:
        a.userdata_url = endpoints.userdata_url
    else:
        a.userdata_from_id_token = True
    if auth.callback_url:
        a.oauth_callback_url = auth.callback_url
    if endpoints.logout_redirect_url:
        a.logout_redirect_url = endpoints.logout_redirect_url
    a.scope = list(auth.scopes)
    a.username_claim = auth.username_claim
    a.login_service = auth.login_service
    # Tokens are kept (encrypted) so the hub can refresh them and re-read group membership.
    a.enable_auth_state = True
    a.refresh_pre_spawn = auth.refresh_pre_spawn
    a.auth_refresh_age = auth.auth_refresh_age
    a.sign_in_timeout = auth.sign_in_timeout
    # JupyterHub groups mirror the provider's at every sign-in and refresh.
    a.manage_groups = True
    a.groups_claim = auth.groups_claim
    if auth.allow_all_users:
        a.allow_all = True
    else:
        a.allowed_groups = set(auth.allowed_groups)
    if auth.admin_groups:
        a.admin_groups = set(auth.admin_groups)
    # Whoever leaves the allowed groups is refused at next sign-in, database entry or not.
    a.allow_existing_users = False
    a.custom_403_message = (
        "KumoHub could not sign you in with this account. Contact the KumoHub administrators."
    )


def configure_auth(c: Any, settings: Settings) -> None:
    auth = settings.auth
    if isinstance(auth, OIDCAuth):
        configure_oidc(c, settings, auth)
    else:
        configure_shared_password(c, settings, auth)
