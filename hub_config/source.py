"""Where the hub finds its settings: a YAML file (local mode) or the z2jh chart values."""

from __future__ import annotations

import os
from pathlib import Path

from kumohub.settings import Settings, SettingsError, load_settings, parse_settings

SETTINGS_ENV = "KUMOHUB_SETTINGS"
DEFAULT_LOCAL_SETTINGS = Path(__file__).resolve().parent / "local-settings.yaml"
# Key under the chart's free-form `custom:` values.
CHART_CUSTOM_KEY = "kumohub"


def settings_from_chart() -> Settings | None:
    """Settings from `custom.kumohub` when running inside the z2jh hub image."""
    try:
        from z2jh import get_config  # provided by the z2jh hub image
    except ImportError:
        return None
    data = get_config(f"custom.{CHART_CUSTOM_KEY}")
    if data is None:
        raise SettingsError(f"chart values: custom.{CHART_CUSTOM_KEY} is missing")
    return parse_settings(data, f"chart values custom.{CHART_CUSTOM_KEY}")


def find_settings() -> Settings:
    """The settings for this hub: $KUMOHUB_SETTINGS, the chart, or the local example."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return load_settings(path)
    chart = settings_from_chart()
    if chart is not None:
        return chart
    return load_settings(DEFAULT_LOCAL_SETTINGS)
