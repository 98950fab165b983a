"""OIDC settings: what the schema refuses, and the authenticator configuration they produce."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from kumohub.hub_config.auth import configure_oidc, provider_endpoints
from kumohub.hub_config.oidc import KumoOIDCAuthenticator
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from kumohub.settings import OIDCAuth, SettingsError, parse_settings
from tests.support.ports import free_port

PROFILE = {
    "slug": "cpu",
    "display_name": "CPU",
    "images": [{"slug": "ds", "display_name": "DS", "image": "example/ds:1"}],
}
ENDPOINTS = {
    "authorize_url": "https://idp.example.com/authorize",
    "token_url": "https://idp.example.com/token",
    "userdata_url": "https://idp.example.com/userinfo",
}
UNSET = "KUMOHUB_TEST_VARIABLE_THAT_IS_NEVER_SET"


def oidc(**auth: Any) -> OIDCAuth:
    settings = parse_settings({"profiles": [PROFILE], "auth": {"kind": "oidc", **auth}})
    assert isinstance(settings.auth, OIDCAuth)
    return settings.auth


def problems(**auth: Any) -> str:
    with pytest.raises(SettingsError) as failure:
        oidc(**auth)
    return str(failure.value)


def test_provider_urls_must_be_https_except_on_loopback() -> None:
    message = problems(issuer="http://idp.example.com", allowed_groups=["a"])
    assert "auth.issuer: must be an https:// URL (http:// only for loopback hosts)" in message
    assert oidc(issuer="http://127.0.0.1:9400", allowed_groups=["a"]).issuer


def test_who_may_sign_in_must_be_explicit() -> None:
    message = problems(**ENDPOINTS)
    assert "auth: allowed_groups is empty: name the provider groups" in message
    assert "or set allow_all_users: true" in message
    both = problems(**ENDPOINTS, allowed_groups=["a"], allow_all_users=True)
    assert "allowed_groups has no effect with allow_all_users: true" in both


def test_claims_source_decides_which_endpoints_are_needed() -> None:
    no_userinfo = {k: v for k, v in ENDPOINTS.items() if k != "userdata_url"}
    assert oidc(**no_userinfo, claims_from="id_token", allowed_groups=["a"])
    assert "auth: missing userdata_url" in problems(**no_userinfo, allowed_groups=["a"])
    clash = problems(**ENDPOINTS, claims_from="id_token", allowed_groups=["a"])
    assert "userdata_url is not used when claims_from is 'id_token'" in clash
    assert "scopes must include 'openid'" in problems(
        **ENDPOINTS, scopes=["profile"], allowed_groups=["a"]
    )


def test_unreachable_issuer_is_named_in_the_error() -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SettingsError) as failure:
        provider_endpoints(oidc(issuer=issuer, allowed_groups=["a"]))
    assert f"auth.issuer: cannot read the provider's discovery document {issuer}/" in str(
        failure.value
    )


def crypt_ready_config() -> Config:
    c = Config()
    c.CryptKeeper.keys = [os.urandom(32)]
    return c


def test_missing_credentials_name_the_variable_or_file(tmp_path: Path) -> None:
    auth = oidc(**ENDPOINTS, allowed_groups=["a"], client_id_env=UNSET)
    with pytest.raises(SettingsError, match=f"the OIDC client id is not set: export {UNSET}"):
        configure_oidc(crypt_ready_config(), parse_settings({"profiles": [PROFILE]}), auth)
    missing = tmp_path / "no-such-secret"
    auth = oidc(**ENDPOINTS, allowed_groups=["a"], client_secret_file=str(missing))
    (tmp_path / "id").write_text("kumohub\n")
    auth = auth.model_copy(update={"client_id_file": tmp_path / "id"})
    with pytest.raises(SettingsError, match=f"auth.client_secret_file: cannot read {missing}"):
        configure_oidc(crypt_ready_config(), parse_settings({"profiles": [PROFILE]}), auth)


def cognito_like_authenticator(tmp_path: Path) -> tuple[Config, KumoOIDCAuthenticator]:
    (tmp_path / "client-id").write_text("1example23456789\n")
    (tmp_path / "client-secret").write_text("s3cret\n")
    settings = parse_settings(
        {
            "profiles": [PROFILE],
            "hub": {"admin_users": ["root"]},
            "groups": {"members": {"static": ["root"]}},
            "auth": {
                "kind": "oidc",
                "authorize_url": ENDPOINTS["authorize_url"],
                "token_url": ENDPOINTS["token_url"],
                "claims_from": "id_token",
                "client_id_file": str(tmp_path / "client-id"),
                "client_secret_file": str(tmp_path / "client-secret"),
                "username_claim": "email",
                "groups_claim": "cognito:groups",
                "allowed_groups": ["data-science"],
                "admin_groups": ["ml-platform"],
            },
        }
    )
    c = crypt_ready_config()
    configure_oidc(c, settings, settings.auth)  # type: ignore[arg-type]
    return c, KumoOIDCAuthenticator(config=c)


def test_settings_become_authenticator_configuration(tmp_path: Path) -> None:
    c, authenticator = cognito_like_authenticator(tmp_path)
    assert c.JupyterHub.authenticator_class is KumoOIDCAuthenticator
    assert (authenticator.client_id, authenticator.client_secret) == ("1example23456789", "s3cret")
    assert authenticator.userdata_from_id_token and not authenticator.userdata_url
    assert authenticator.basic_auth  # client_secret_basic, OIDC's default
    assert authenticator.manage_groups and authenticator.enable_auth_state
    assert authenticator.allowed_groups == {"data-science"}
    assert authenticator.admin_groups == {"ml-platform"}
    assert not authenticator.allow_existing_users
    # Nothing of the shared-password set-up leaks into OIDC mode.
    assert not authenticator.admin_users and not authenticator.allowed_users
    assert "load_groups" not in c.JupyterHub


def test_groups_claim_shapes(tmp_path: Path) -> None:
    _, authenticator = cognito_like_authenticator(tmp_path)

    def groups(claims: dict[str, Any]) -> set[str]:
        return asyncio.run(authenticator.get_user_groups({"oauth_user": claims}))

    assert groups({"cognito:groups": ["a", "b"]}) == {"a", "b"}
    assert groups({"cognito:groups": "solo"}) == {"solo"}
    assert groups({}) == set()
    assert groups({"cognito:groups": {"not": "a list"}}) == set()


def test_expired_id_token_asks_for_a_refresh_instead_of_failing(tmp_path: Path) -> None:
    _, authenticator = cognito_like_authenticator(tmp_path)
    expired = jwt.encode({"exp": int(time.time()) - 60, "aud": "x"}, "k" * 32, algorithm="HS256")
    with pytest.raises(HTTPClientError) as failure:
        asyncio.run(authenticator.token_to_user({"id_token": expired}))
    assert failure.value.code == 401
