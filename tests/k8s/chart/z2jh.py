"""Stand-in for the `z2jh` helper module of the chart's hub image (test support).

In a cluster the chart mounts its values as a Secret and `z2jh.get_config` reads dotted keys
from that file. Here the file is the one named by `$KUMOHUB_TEST_CHART_VALUES`, written by
tests/k8s/kube_hub.py from chart-values/values.yaml plus the test's overrides. KumoHub's
`settings_from_chart()` imports `get_config` from here exactly as it does in the hub image.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import yaml

VALUES_ENV = "KUMOHUB_TEST_CHART_VALUES"


@functools.cache
def _values() -> dict[str, Any]:
    with open(os.environ[VALUES_ENV]) as values:
        return yaml.safe_load(values) or {}


def get_config(key: str, default: Any = None) -> Any:
    """The chart value at a dotted key (`custom.kumohub`), or `default` when absent."""
    value: Any = _values()
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value
