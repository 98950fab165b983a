"""Stand-in for the z2jh 4.4 chart's own hub configuration (test support, not product code).

In a cluster, the chart's `jupyterhub_config.py` turns the chart values into traitlets and
then runs each `hub.extraConfig` snippet, which is where KumoHub's `configure()` is called
(see chart-values/values.yaml). This file sets the subset of the chart's traitlets that
matters for KumoHub's values (the chart's defaults where our values are silent; the chart's
authenticator, image pull and network-tools settings are left out), then runs
`hub.extraConfig` the same way, so KumoHub configures itself as it does in production.
Service addresses come from the environment variables Kubernetes gives the hub pod
(`HUB_SERVICE_HOST`, `PROXY_API_SERVICE_HOST`, ...); here they name loopback ports. The one
deliberate difference: the chart makes the hub listen on 0.0.0.0, this listens on
`HUB_SERVICE_HOST` (127.0.0.1).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from z2jh import get_config

# traitlets runs this file with the configuration object as `c`
config = c  # type: ignore[name-defined]  # noqa: F821

release = os.environ["HELM_RELEASE_NAME"]
hub_host, hub_port = os.environ["HUB_SERVICE_HOST"], int(os.environ["HUB_SERVICE_PORT"])

config.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
# The proxy runs in its own pod: the hub only talks to its API and never starts it.
config.ConfigurableHTTPProxy.api_url = (
    f"http://{os.environ['PROXY_API_SERVICE_HOST']}:{os.environ['PROXY_API_SERVICE_PORT']}"
)
config.ConfigurableHTTPProxy.should_start = False
# A hub restart (upgrade, eviction) must not stop user pods.
config.JupyterHub.cleanup_servers = False
config.JupyterHub.last_activity_interval = 60
config.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

if get_config("hub.db.type", "sqlite-pvc") == "sqlite-pvc":
    config.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"  # in the hub's working directory
else:
    config.JupyterHub.db_url = get_config("hub.db.url")

config.JupyterHub.ip = os.environ["PROXY_PUBLIC_SERVICE_HOST"]
config.JupyterHub.port = int(os.environ["PROXY_PUBLIC_SERVICE_PORT"])
config.JupyterHub.hub_ip = hub_host
config.JupyterHub.hub_port = hub_port
config.JupyterHub.hub_connect_url = f"http://{hub_host}:{hub_port}"

config.KubeSpawner.common_labels = {
    "app": "jupyterhub",
    "heritage": "jupyterhub",
    "chart": "jupyterhub-4.4.0",
    "release": release,
}
config.KubeSpawner.namespace = os.environ["POD_NAMESPACE"]
config.KubeSpawner.start_timeout = get_config("singleuser.startTimeout", 300)
config.KubeSpawner.events_enabled = get_config("singleuser.events", True)
config.KubeSpawner.extra_labels = get_config(
    "singleuser.extraLabels", {"hub.jupyter.org/network-access-hub": "true"}
)
config.KubeSpawner.extra_annotations = get_config("singleuser.extraAnnotations", {})
config.KubeSpawner.uid = get_config("singleuser.uid", 1000)
config.KubeSpawner.fs_gid = get_config("singleuser.fsGid", 100)
config.KubeSpawner.allow_privilege_escalation = get_config(
    "singleuser.allowPrivilegeEscalation", False
)
image = get_config("singleuser.image.name")
if image:
    tag = get_config("singleuser.image.tag")
    config.KubeSpawner.image = f"{image}:{tag}" if tag else image

if get_config("scheduling.userScheduler.enabled", False):
    config.KubeSpawner.scheduler_name = f"{release}-user-scheduler"
if get_config("scheduling.podPriority.enabled", False):
    config.KubeSpawner.priority_class_name = f"{release}-default-priority"
config.KubeSpawner.tolerations = [
    {"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
]
if get_config("scheduling.userPods.nodeAffinity.matchNodePurpose", "prefer") == "prefer":
    config.KubeSpawner.node_affinity_preferred = [
        {
            "weight": 100,
            "preference": {
                "matchExpressions": [
                    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
                ]
            },
        }
    ]
if get_config("singleuser.storage.type", "dynamic") == "none":
    config.KubeSpawner.storage_pvc_ensure = False

for name, snippet in sorted((get_config("hub.extraConfig") or {}).items()):
    print(f"Loading extra config: {name}")
    exec(compile(snippet, f"hub.extraConfig.{name}", "exec"))  # noqa: S102 (as the chart does)
