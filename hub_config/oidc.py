"""KumoHub's OIDC authenticator: GenericOAuthenticator with sign-in failures a person can act on.

Upstream answers a provider outage, a wrong client secret or an account without the username
claim with a bare "500 Internal Server Error", and a stale or forged `state` with a terse
"OAuth state mismatch". Here each failure is an error page that says what went wrong and what
to do next; nothing is recorded or started for the user. Group membership is re-read from the
provider at every auth refresh, so someone removed from the allowed groups is signed out
within `auth_refresh_age` and refused at their next sign-in.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import urlparse

import jwt
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import (
    STATE_COOKIE_NAME,
    OAuthCallbackHandler,
    OAuthLoginHandler,
    _deserialize_state,
)
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import Integer, Unicode

# Token-endpoint errors (RFC 6749 section 5.2) that mean the hub's own credentials are wrong.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
_PROBE_TIMEOUT = 5


def sign_in_error(status: int, message: str) -> web.HTTPError:
    """An HTTP error whose page shows `message` and a link back to the sign-in page.

    The link is relative: every page that raises this sits under `<base_url>hub/`.
    """
    error = web.HTTPError(status, "%s", message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    error.jupyterhub_html_message = (  # type: ignore[attr-defined]
        f'{html.escape(message)} <a href="login">Back to the sign-in page</a>'
    )
    return error


def provider_unreachable(exc: BaseException) -> bool:
    """Connection refused, DNS failure or timeout: no answer from the provider at all."""
    if isinstance(exc, HTTPClientError):
        return exc.code == 599
    return isinstance(exc, OSError)


def _state_id(serialized: str) -> str | None:
    state = _deserialize_state(serialized) if serialized else {}
    return state.get("state_id") if isinstance(state, dict) else None


def _error_body(exc: HTTPClientError) -> dict[str, Any]:
    """The OAuth error document (`error`, `error_description`) of a failed response, if any."""
    if exc.response is None or not exc.response.body:
        return {}
    try:
        body = json.loads(exc.response.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _id_token_expired(id_token: str | None) -> bool:
    if not id_token:
        return False
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False  # malformed: upstream reports it
    expiry = claims.get("exp")
    return isinstance(expiry, int | float) and expiry < time.time()


class KumoLoginHandler(OAuthLoginHandler):
    """Check the provider answers before sending the browser there; bound the sign-in time."""

    async def get(self) -> None:
        await self.authenticator.check_provider_reachable()
        super().get()

    def set_state_cookie(self, state_cookie_value: str) -> None:
        lifetime_days = self.authenticator.sign_in_timeout / 86400
        self._set_cookie(
            STATE_COOKIE_NAME, state_cookie_value, expires_days=lifetime_days, httponly=True
        )


class KumoCallbackHandler(OAuthCallbackHandler):
    """Refuse expired, foreign or forged sign-in responses with a page that says so."""

    def get_state_cookie(self) -> str:
        if self._state_cookie is None:
            # The signed cookie carries its creation time: older than the timeout is expired.
            max_age_days = self.authenticator.sign_in_timeout / 86400
            value = self.get_secure_cookie(STATE_COOKIE_NAME, max_age_days=max_age_days)
            self._state_cookie = (value or b"").decode("utf8", "replace")
            self.clear_cookie(STATE_COOKIE_NAME)
        return self._state_cookie

    def check_error(self) -> None:
        error = self.get_argument("error", "")
        if not error:
            return
        if error == "access_denied":
            raise sign_in_error(403, "Sign-in was cancelled at the identity provider.")
        detail = self.get_argument("error_description", "") or error
        raise sign_in_error(403, f"The identity provider refused the sign-in: {detail}.")

    def check_state(self) -> None:
        cookie_state = self.get_state_cookie()
        if not cookie_state:
            minutes = max(1, self.authenticator.sign_in_timeout // 60)
            raise sign_in_error(
                400,
                "This sign-in has expired or was started in another browser: it must be "
                f"completed within {minutes} minutes, in the browser where it began. "
                "Please start again.",
            )
        expected = _state_id(cookie_state)
        if expected is None or _state_id(self.get_argument("state", "")) != expected:
            self.log.warning("Refused an OAuth callback whose state does not match its cookie")
            raise sign_in_error(
                400,
                "The answer from the identity provider does not belong to the sign-in this "
                "browser started (its state parameter does not match), so it was refused. "
                "Please start again.",
            )


class KumoOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator with clear sign-in errors and group checks at every refresh."""

    login_handler = KumoLoginHandler
    callback_handler = KumoCallbackHandler

    groups_claim = Unicode(
        "groups",
        config=True,
        help="The claim listing the user's groups. Absent claim: no groups.",
    )
    sign_in_timeout = Integer(
        600,
        config=True,
        help="Seconds from pressing 'Sign in' to the provider's answer; later answers are refused.",
    )

    @property
    def _provider(self) -> str:
        return urlparse(self.token_url).netloc or self.token_url

    def _unreachable_error(self) -> web.HTTPError:
        return sign_in_error(
            503,
            f"KumoHub cannot reach the identity provider ({self._provider}) to sign you in. "
            "Please try again in a few minutes; if it keeps failing, tell the KumoHub "
            "administrators.",
        )

    async def check_provider_reachable(self) -> None:
        """Probe the token endpoint, which the hub must reach to finish any sign-in."""
        options = {
            **self.http_request_kwargs,
            "method": "GET",
            "connect_timeout": _PROBE_TIMEOUT,
            "request_timeout": _PROBE_TIMEOUT,
            "validate_cert": self.validate_server_cert,
        }
        try:
            await self.http_client.fetch(HTTPRequest(self.token_url, **options), raise_error=False)
        except (HTTPClientError, OSError) as exc:
            if not provider_unreachable(exc):
                raise
            self.log.warning("Identity provider %s unreachable at sign-in: %s", self._provider, exc)
            raise self._unreachable_error() from None

    def _provider_failure(self, exc: HTTPClientError | OSError) -> web.HTTPError:
        """Turn a failed call to the provider during sign-in into a page a person can act on."""
        if provider_unreachable(exc):
            self.log.warning(
                "Identity provider %s unreachable at callback: %s", self._provider, exc
            )
            return self._unreachable_error()
        assert isinstance(exc, HTTPClientError)
        body = _error_body(exc)
        error = str(body.get("error", ""))
        url = exc.response.effective_url if exc.response is not None else ""
        self.log.error("Identity provider refused a sign-in step (%s %s): %s", exc.code, url, body)
        if error in _CLIENT_ERRORS or (url.startswith(self.token_url) and exc.code == 401):
            return sign_in_error(
                502,
                "The identity provider did not accept KumoHub's client credentials "
                f"({error or exc.code}): the hub's OIDC client id or client secret is wrong. "
                "Only the KumoHub administrators can fix this; please tell them.",
            )
        if error == "invalid_grant":
            return sign_in_error(
                400,
                "The sign-in code from the identity provider is no longer valid (it expired or "
                "was already used). Please start again.",
            )
        reason = str(body.get("error_description") or error or f"HTTP {exc.code}")
        return sign_in_error(
            502,
            f"The identity provider could not complete your sign-in ({reason}). Please try "
            "again; if it keeps failing, tell the KumoHub administrators.",
        )

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        try:
            return await super().authenticate(handler, data, **kwargs)
        except (HTTPClientError, OSError) as exc:
            raise self._provider_failure(exc) from None

    async def token_to_user(self, token_info: dict[str, Any]) -> Any:
        # Upstream answers an expired ID token with a 500; as a 401 it is refreshed instead.
        if self.userdata_from_id_token and _id_token_expired(token_info.get("id_token")):
            raise HTTPClientError(401, "the ID token has expired")
        return await super().token_to_user(token_info)

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        username = user_info.get(self.username_claim)
        if isinstance(username, str) and username:
            return username
        self.log.warning(
            "Refused sign-in of sub=%r: no %r claim (claims received: %s)",
            user_info.get("sub"),
            self.username_claim,
            ", ".join(sorted(user_info)),
        )
        raise sign_in_error(
            403,
            f"Your account at the identity provider has no '{self.username_claim}' claim, "
            "which KumoHub uses as your user name, so you cannot be signed in. Ask the "
            "identity provider's administrators to set it for your account.",
        )

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        claims = auth_state.get(self.user_auth_state_key) or {}
        value = claims.get(self.groups_claim)
        if isinstance(value, str):
            return {value} if value else set()
        if isinstance(value, list):
            return {group for group in value if isinstance(group, str) and group}
        if value is not None:
            self.log.warning("Ignoring %r claim that is not a list: %r", self.groups_claim, value)
        return set()

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if await super().check_allowed(username, auth_model):
            return True
        assert auth_model is not None
        claims = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        allowed = ", ".join(sorted(self.allowed_groups))
        if self.groups_claim not in claims:
            self.log.warning(
                "Refused %s: no %r claim from the provider", username, self.groups_claim
            )
            raise sign_in_error(
                403,
                f"KumoHub cannot tell which groups {username} belongs to: the identity "
                f"provider sent no '{self.groups_claim}' claim. Access needs membership in one "
                f"of: {allowed}. Ask the identity provider's administrators to include group "
                "membership in sign-in.",
            )
        self.log.warning("Refused %s: in none of the allowed groups", username)
        raise sign_in_error(
            403,
            f"{username} is not in a group allowed to use KumoHub. Access needs membership in "
            f"one of: {allowed}. Ask the KumoHub administrators to add you to one of them.",
        )

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Re-read claims; sign out users who left the allowed groups.

        A provider that does not answer keeps the session as it is (logged): an outage of the
        identity provider should not sign out everyone who is working.
        """
        try:
            refreshed = await super().refresh_user(user, handler, **kwargs)
        except (HTTPClientError, OSError) as exc:
            server_error = isinstance(exc, HTTPClientError) and exc.code >= 500
            if not (provider_unreachable(exc) or server_error):
                raise
            self.log.warning("Keeping %s signed in: provider did not answer: %s", user.name, exc)
            return True
        # OAuthenticator's own check answers (ours raises an error page).
        still_allowed = self.allow_all or not isinstance(refreshed, dict)
        if not still_allowed:
            still_allowed = await GenericOAuthenticator.check_allowed(self, user.name, refreshed)
        if not still_allowed:
            self.log.warning("%s is no longer in an allowed group; signing out", user.name)
            return False
        return refreshed
