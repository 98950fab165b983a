"""The guard policy in the settings document: secure defaults, clear errors."""

from __future__ import annotations

import pytest

from kumohub.settings import GuardPolicy, SettingsError, parse_settings

PROFILE = {
    "slug": "cpu",
    "display_name": "CPU",
    "images": [{"slug": "ds", "display_name": "DS", "image": "example/ds:1"}],
}


def problems(guard: object) -> str:
    with pytest.raises(SettingsError) as failure:
        parse_settings({"profiles": [PROFILE], "guard": guard}, "test.yaml")
    return str(failure.value)


def test_defaults_read_text_only_and_open_vscode_only() -> None:
    policy = GuardPolicy()
    assert ".ipynb" in policy.content_extensions and ".csv" not in policy.content_extensions
    assert policy.base64_extensions == ()
    assert policy.proxied_servers == ("vscode",)
    assert policy.audit_log_path is None


def test_malformed_policy_names_the_field() -> None:
    message = problems(
        {
            "content_extensions": ["py"],
            "base64_extensions": [".PNG"],
            "content_max_bytes": 0,
            "proxied_servers": ["proxy", "bad name"],
            "audit_log_path": "relative/audit.jsonl",
            "download": True,
        }
    )
    assert "guard.content_extensions[0]: must be a lowercase file extension" in message
    assert "guard.base64_extensions[0]: must be a lowercase file extension" in message
    assert "guard.content_max_bytes:" in message
    assert "guard.proxied_servers[0]: 'proxy' is a route of the user server" in message
    assert "guard.proxied_servers[1]: must be a jupyter-server-proxy server name" in message
    assert "guard.audit_log_path: must be an absolute path" in message
    assert "guard.download: unknown key" in message


def test_a_valid_policy_is_kept() -> None:
    settings = parse_settings(
        {
            "profiles": [PROFILE],
            "guard": {
                "base64_extensions": [".png"],
                "terminals": False,
                "audit_log_path": "/var/log/kumohub/guard.jsonl",
            },
        }
    )
    assert settings.guard.base64_extensions == (".png",)
    assert settings.guard.terminals is False
