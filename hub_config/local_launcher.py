"""`kumohub-local`: start the whole platform on this machine and say how to sign in.

Validates the settings first (a malformed document stops here with one line per bad
field), keeps generated passwords in the state directory, then runs JupyterHub with
hub_config/jupyterhub_config.py.
"""

from __future__ import annotations

import argparse
import os
import secrets
import string
import sys
from pathlib import Path

from kumohub.settings import OIDCAuth, Settings, SettingsError, SharedPasswordAuth, load_settings

from .source import DEFAULT_LOCAL_SETTINGS, SETTINGS_ENV

CONFIG_FILE = Path(__file__).resolve().parent / "jupyterhub_config.py"
# JupyterHub's variable for the key that encrypts auth_state (named here to keep start-up light).
CRYPT_KEY_ENV = "JUPYTERHUB_CRYPT_KEY"
_ALPHABET = string.ascii_letters + string.digits


def _generated(path: Path, length: int, alphabet: str = _ALPHABET) -> str:
    """A secret kept in the state directory, so it stays the same across restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def ensure_passwords(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """Fill the shared-password variables from the environment or the state directory."""
    auth = settings.auth
    if not isinstance(auth, SharedPasswordAuth):
        return {}
    secrets_dir = Path(settings.storage.local.root) / "secrets"
    if not env.get(auth.user_password_env):
        env[auth.user_password_env] = _generated(secrets_dir / "user-password", 16)
    if settings.hub.admin_users and not env.get(auth.admin_password_env):
        env[auth.admin_password_env] = _generated(secrets_dir / "admin-password", 32)
    return {
        "user": env[auth.user_password_env],
        "admin": env.get(auth.admin_password_env, ""),
    }


def ensure_crypt_key(settings: Settings, env: dict[str, str]) -> None:
    """OIDC keeps the provider's tokens encrypted in the hub database; keep its key stable.

    A new key on every start would make the stored tokens unreadable and force everyone to
    sign in again, so it is generated once into the state directory like the passwords.
    """
    if isinstance(settings.auth, OIDCAuth) and not env.get(CRYPT_KEY_ENV):
        secrets_dir = Path(settings.storage.local.root) / "secrets"
        env[CRYPT_KEY_ENV] = _generated(secrets_dir / "crypt-key", 64, string.hexdigits[:16])


def sign_in_help(settings: Settings, passwords: dict[str, str]) -> str:
    url = settings.hub.bind_url.rstrip("/") + "/hub/login"
    lines = [f"KumoHub (local mode) is starting at {url}"]
    if isinstance(settings.auth, OIDCAuth):
        provider = settings.auth.issuer or settings.auth.authorize_url
        lines.append(f"  Sign in with {settings.auth.login_service} (OpenID Connect: {provider})")
    if passwords:
        members = sorted({u for us in settings.groups.members.values() for u in us})
        users = [u for u in members if u not in settings.hub.admin_users]
        if users:
            lines.append(f"  Users: {', '.join(users)}  password: {passwords['user']}")
        if settings.hub.admin_users:
            admins = ", ".join(settings.hub.admin_users)
            lines.append(f"  Admin: {admins}  password: {passwords['admin']}")
    lines.append(f"  State (homes, team folder, hub database): {settings.storage.local.root}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings",
        type=Path,
        default=Path(os.environ.get(SETTINGS_ENV, DEFAULT_LOCAL_SETTINGS)),
        help="KumoHub settings YAML (default: hub_config/local-settings.yaml)",
    )
    args, hub_args = parser.parse_known_args(argv)
    settings_path = args.settings.resolve()
    try:
        settings = load_settings(settings_path)
    except SettingsError as error:
        print(f"KumoHub cannot start:\n{error}", file=sys.stderr)
        return 2
    if settings.mode != "local":
        print(f"{settings_path}: mode is {settings.mode!r}; kumohub-local needs 'local'")
        return 2

    env = dict(os.environ)
    env[SETTINGS_ENV] = str(settings_path)
    passwords = ensure_passwords(settings, env)
    ensure_crypt_key(settings, env)
    state = Path(settings.storage.local.root)
    state.mkdir(parents=True, exist_ok=True)
    print(sign_in_help(settings, passwords), flush=True)

    hub = Path(sys.executable).parent / "jupyterhub"
    command = [str(hub), "-f", str(CONFIG_FILE), *hub_args]
    os.chdir(state)
    os.execve(command[0], command, env)  # replaces this process: signals reach the hub
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
