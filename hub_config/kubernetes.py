"""Kubernetes mode: the z2jh chart runs the hub, KumoHub sets what it owns on top.

The chart already configures the hub's address, database, proxy, cookie secret and
KubeSpawner's connection to the API. `configure_kubernetes` sets only KumoHub's part: the
spawner class and its settings, the namespace when the settings name one, and everything
shared with local mode (`configure_common`). It runs from `hub.extraConfig`, after the
chart's own configuration, so `c.KumoKubeSpawner` values win over the chart's
`c.KubeSpawner` ones.
"""

from __future__ import annotations

import os
from typing import Any

from kumohub.settings import Settings

from .configure import configure_common


def _chart_entries(c: Any, name: str) -> list[dict[str, Any]]:
    """Services or roles the chart declared, so KumoHub's are added beside them."""
    section = c.JupyterHub
    return [dict(entry) for entry in section[name]] if name in section else []


def _combined(chart: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {entry["name"] for entry in ours}
    return [entry for entry in chart if entry.get("name") not in names] + ours


def configure_kubernetes(c: Any, settings: Settings) -> None:
    """KumoHub on the z2jh chart: KumoKubeSpawner plus the settings both modes share."""
    from kumohub.spawner.kube import SINGLEUSER_COMMAND, KumoKubeSpawner

    chart_services = _chart_entries(c, "services")
    chart_roles = _chart_entries(c, "load_roles")

    c.JupyterHub.spawner_class = KumoKubeSpawner
    spawner = c.KumoKubeSpawner
    spawner.kumohub_settings = settings
    # Profiles come from the KumoHub settings, never from singleuser.profileList.
    spawner.profile_list = []
    # An explicit command even if the chart sets none, so KumoHub's flags (idle timeout,
    # download guard, query extension) reach every server.
    spawner.cmd = list(SINGLEUSER_COMMAND)
    namespace = settings.kubernetes.namespace or os.environ.get("POD_NAMESPACE")
    if namespace:
        spawner.namespace = namespace
    # JupyterHub counts a refused spawn request as a failed spawn; z2jh's default limit (5)
    # would let anyone restart the hub with five bad requests. Liveness probes watch the hub.
    c.Spawner.consecutive_failure_limit = 0

    configure_common(c, settings)
    c.JupyterHub.services = _combined(chart_services, list(c.JupyterHub.services))
    c.JupyterHub.load_roles = _combined(chart_roles, list(c.JupyterHub.load_roles))
