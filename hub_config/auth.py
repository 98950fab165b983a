"""Authenticator wiring: shared password on one machine, OIDC (oauthenticator) in production."""

from __future__ import annotations

import os
from typing import Any

from kumohub.settings import OIDCAuth, Settings, SettingsError, SharedPasswordAuth


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


def _client_secret(auth: OIDCAuth) -> str:
    if auth.client_secret_file is not None:
        try:
            return auth.client_secret_file.read_text().strip()
        except OSError as exc:
            raise SettingsError(
                f"auth.client_secret_file: cannot read {auth.client_secret_file}: {exc.strerror}"
            ) from None
    return _secret_from_env(auth.client_secret_env, "the OIDC client secret")


def configure_oidc(c: Any, settings: Settings, auth: OIDCAuth) -> None:
    c.JupyterHub.authenticator_class = "generic-oauth"
    g = c.GenericOAuthenticator
    g.client_id = _secret_from_env(auth.client_id_env, "the OIDC client id")
    g.client_secret = _client_secret(auth)
    g.authorize_url = auth.authorize_url
    g.token_url = auth.token_url
    g.userdata_url = auth.userdata_url
    if auth.callback_url:
        g.oauth_callback_url = auth.callback_url
    if auth.logout_redirect_url:
        g.logout_redirect_url = auth.logout_redirect_url
    g.scope = list(auth.scopes)
    g.username_claim = auth.username_claim
    g.login_service = "your company account"
    g.enable_auth_state = True
    g.manage_groups = True
    g.auth_state_groups_key = f"oauth_user.{auth.groups_claim}"
    if auth.allowed_groups:
        g.allowed_groups = set(auth.allowed_groups)
    if auth.admin_groups:
        g.admin_groups = set(auth.admin_groups)
    g.admin_users = set(settings.hub.admin_users)
    g.refresh_pre_spawn = auth.refresh_pre_spawn
    g.auth_refresh_age = auth.auth_refresh_age


def configure_auth(c: Any, settings: Settings) -> None:
    auth = settings.auth
    if isinstance(auth, OIDCAuth):
        configure_oidc(c, settings, auth)
    else:
        configure_shared_password(c, settings, auth)
