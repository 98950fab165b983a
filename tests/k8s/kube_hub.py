"""KumoHub in Kubernetes mode against the envtest API server, deployed the way the chart does it.

Test support, not product code. `deploy_kumohub` plays three roles in turn:

* the platform engineer: namespace enforcing the `restricted` Pod Security Standard, the IRSA
  service accounts, chart-values/storage.yaml (the `efs-home` StorageClass, the `team-efs`
  and `datasets-efs` volumes and claims, the claims moved into the test's namespace);
* the z2jh chart: the hub's ServiceAccount with the chart's hub Role (pods, claims, secrets,
  services, events in the namespace: nothing else), the `<release>-default-priority`
  PriorityClass, configurable-http-proxy as its own process (own "pod") with an auth token,
  and the hub started from `tests/k8s/chart/jupyterhub_config.py`, which turns the values
  (chart-values/values.yaml plus test overrides) into traitlets and runs `hub.extraConfig`;
* Kubernetes itself: the hub authenticates with a token of its ServiceAccount (TokenRequest),
  exactly what the projected token gives the hub pod, through a kubeconfig (KubeSpawner
  reads one when not in a pod).

The proxy outlives hub restarts, as it does in the chart (the hub never starts or stops it).
Every process is stopped when the block ends, also on failure, and dies with the test process
(PDEATHSIG) if that is killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.client import HubClient
from tests.support.hub import ADMIN_PASSWORD, USER_PASSWORD, deep_merge
from tests.support.ports import free_port
from tests.support.processes import wait_until

from .envtest.cluster import EnvtestCluster, set_pdeathsig, stop_process_group

REPO = Path(__file__).resolve().parents[2]
CHART_CONFIG = Path(__file__).resolve().parent / "chart" / "jupyterhub_config.py"
CHART_VALUES = REPO / "chart-values" / "values.yaml"
PROXY_COMMAND = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"
RELEASE = "kumohub"
HUB_ACCOUNT = "hub"
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"

# The chart's hub Role (templates/hub/rbac.yaml in z2jh 4.4.0), bound to the hub's account.
HUB_ROLE_RULES = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
]

# What the tests change in chart-values/values.yaml: sign-in with the shared password and
# static groups instead of the company's OIDC provider, the chart's SQLite database instead
# of RDS. The culler is a hub service tested in local mode; here it would only be a process.
TEST_VALUES: dict[str, Any] = {
    "hub": {"db": {"type": "sqlite-pvc"}},
    "custom": {
        "kumohub": {
            "auth": {"kind": "shared-password"},
            "groups": {
                "members": {
                    # production usernames are email addresses (`username_claim: email`)
                    "data-science": ["alice", "bob", "erin", "dana@kumo.example"],
                    "gpu-users": ["bob"],
                    "ml-platform": ["mallory"],
                }
            },
            "culling": {"enabled": False},
        }
    },
}

# What the platform engineer applies once per cluster (chart-values/README.md): the EFS
# StorageClass of the homes, the team and dataset volumes and their claims.
STORAGE_MANIFESTS = REPO / "chart-values" / "storage.yaml"
COLLECTIONS = {
    "StorageClass": "/apis/storage.k8s.io/v1/storageclasses",
    "PersistentVolume": "/api/v1/persistentvolumes",
    "PersistentVolumeClaim": "/api/v1/namespaces/{namespace}/persistentvolumeclaims",
}


def chart_values(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """chart-values/values.yaml with the test's changes (and a test's own) merged in."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    return deep_merge(deep_merge(values, TEST_VALUES), overrides or {})


class ApiError(AssertionError):
    """The API server refused a set-up request the platform engineer or chart would make."""


def api(cluster: EnvtestCluster, path: str, method: str = "GET", body: Any = None) -> Any:
    """An admin request that must succeed (409 Already Exists counts: set-up is idempotent)."""
    status, answer = cluster.request(path, method=method, body=body)
    if status >= 300 and status != 409:
        raise ApiError(f"{method} {path}: {status} {answer}")
    return answer


def items(cluster: EnvtestCluster, namespace: str, resource: str, selector: str = "") -> list:
    """Objects of one kind in the namespace, as the API server stores them."""
    query = f"?labelSelector={selector}" if selector else ""
    answer = api(cluster, f"/api/v1/namespaces/{namespace}/{resource}{query}")
    return answer["items"]


def prepare_namespace(cluster: EnvtestCluster, namespace: str, values: Mapping[str, Any]) -> None:
    """What exists before the chart is installed, and what the chart itself creates."""
    ns = api(cluster, f"/api/v1/namespaces/{namespace}")
    ns["metadata"].setdefault("labels", {}).update(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
    )
    api(cluster, f"/api/v1/namespaces/{namespace}", "PUT", ns)

    kubernetes = values["custom"]["kumohub"]["kubernetes"]
    accounts = set(kubernetes.get("service_account_by_group", {}).values())
    if kubernetes.get("default_service_account"):
        accounts.add(kubernetes["default_service_account"])
    for account in sorted(accounts):
        role = f"arn:aws:iam::123456789012:role/{account}"
        api(
            cluster,
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            "POST",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": account, "annotations": {IRSA_ROLE_ANNOTATION: role}},
            },
        )
    for manifest in yaml.safe_load_all(STORAGE_MANIFESTS.read_text()):
        if "namespace" in manifest["metadata"]:
            manifest["metadata"]["namespace"] = namespace
        api(cluster, COLLECTIONS[manifest["kind"]].format(namespace=namespace), "POST", manifest)

    # the chart's objects
    api(
        cluster,
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        "POST",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"{RELEASE}-default-priority"},
            "value": 0,
            "description": "z2jh: default priority of user pods",
        },
    )
    api(
        cluster,
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        "POST",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": HUB_ACCOUNT}},
    )
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    api(
        cluster,
        f"{rbac}/roles",
        "POST",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "hub"},
            "rules": HUB_ROLE_RULES,
        },
    )
    api(
        cluster,
        f"{rbac}/rolebindings",
        "POST",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "hub"},
            "subjects": [{"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"},
        },
    )


def hub_token(cluster: EnvtestCluster, namespace: str) -> str:
    """A token of the hub's ServiceAccount, as the projected volume gives the hub pod."""
    answer = api(
        cluster,
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{HUB_ACCOUNT}/token",
        "POST",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return answer["status"]["token"]


def write_kubeconfig(path: Path, cluster: EnvtestCluster, token: str) -> Path:
    ca = base64.b64encode(cluster.ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {"server": cluster.server, "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": HUB_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "hub", "context": {"cluster": "envtest", "user": HUB_ACCOUNT}}],
        "current-context": "hub",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _start(command: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            # dies with the test process (started from the main thread, as PDEATHSIG needs)
            preexec_fn=set_pdeathsig,
        )


@dataclass
class KubeHub:
    """The deployed hub and proxy. `restart_hub()` replaces the hub process only."""

    cluster: EnvtestCluster
    namespace: str
    folder: Path
    values: dict[str, Any]
    env: dict[str, str] = field(repr=False)
    token: str = field(repr=False)  # the hub's ServiceAccount token (its only credential)
    url: str = ""
    hub_url: str = ""
    hub_process: subprocess.Popen | None = None
    proxy_process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "hub.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> HubClient:
        return HubClient(self.url)

    def signed_in(self, user: str) -> HubClient:
        client = self.client()
        response = client.login(user, USER_PASSWORD)
        assert response.status_code == 302, f"{user} cannot sign in: {response.status_code}"
        return client

    # -- what the API server holds ------------------------------------------------------

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        return items(self.cluster, self.namespace, "pods", selector)

    def claims(self, selector: str = "") -> list[dict[str, Any]]:
        return items(self.cluster, self.namespace, "persistentvolumeclaims", selector)

    # -- the proxy's routing table (its REST API, as the hub uses it) --------------------

    def _proxy_api(self, method: str, path: str = "") -> requests.Response:
        port = self.env["PROXY_API_SERVICE_PORT"]
        return requests.request(
            method,
            f"http://127.0.0.1:{port}/api/routes{path}",
            headers={"Authorization": f"token {self.env['CONFIGPROXY_AUTH_TOKEN']}"},
            timeout=10,
        )

    def routes(self) -> dict[str, Any]:
        return self._proxy_api("GET").json()

    def delete_route(self, path: str) -> None:
        """What a restarted proxy looks like: it has forgotten this route."""
        assert self._proxy_api("DELETE", path).status_code == 204

    # -- processes ----------------------------------------------------------------------

    def start_proxy(self) -> None:
        env = self.env
        self.proxy_process = _start(
            [
                str(PROXY_COMMAND),
                "--ip=127.0.0.1",
                f"--port={env['PROXY_PUBLIC_SERVICE_PORT']}",
                "--api-ip=127.0.0.1",
                f"--api-port={env['PROXY_API_SERVICE_PORT']}",
                f"--default-target={self.hub_url}",
                f"--error-target={self.hub_url}/hub/error",
                "--log-level=warn",
            ],
            self.folder / "proxy.log",
            {"PATH": env["PATH"], "CONFIGPROXY_AUTH_TOKEN": env["CONFIGPROXY_AUTH_TOKEN"]},
            self.folder,
        )

    def start_hub(self) -> None:
        self.hub_process = _start(
            [str(JUPYTERHUB), "-f", str(CHART_CONFIG)], self.log_path, self.env, self.folder
        )
        process = self.hub_process

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"hub exited with {process.returncode}:\n{self.log()[-6000:]}")
            if self.proxy_process is not None and self.proxy_process.poll() is not None:
                log = (self.folder / "proxy.log").read_text(errors="replace")
                raise RuntimeError(f"proxy exited with {self.proxy_process.returncode}:\n{log}")
            with contextlib.suppress(requests.RequestException):
                # through the proxy: the hub has registered its own route
                return requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200
            return False

        wait_until(healthy, timeout=90, what="the hub to answer through the proxy")

    def stop_hub(self) -> None:
        """SIGTERM, as the kubelet does when the hub pod is replaced (then SIGKILL)."""
        if self.hub_process is not None:
            stop_process_group(self.hub_process, timeout=30)
            self.hub_process = None

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def stop(self) -> None:
        self.stop_hub()
        stop_process_group(self.proxy_process, timeout=10)
        self.proxy_process = None


def hub_environment(
    cluster: EnvtestCluster, namespace: str, folder: Path, values_file: Path, token: str
) -> dict[str, str]:
    """The hub pod's environment: chart Services as loopback ports, its own account's token."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KUBERNETES_", "KUMOHUB_", "JUPYTERHUB_", "CONFIGPROXY_"))
        and key not in ("KUBECONFIG", "JPY_COOKIE_SECRET")
    }
    kubeconfig = write_kubeconfig(folder / "hub-kubeconfig", cluster, token)
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "KUBECONFIG": str(kubeconfig),
        "KUMOHUB_TEST_CHART_VALUES": str(values_file),
        "HELM_RELEASE_NAME": RELEASE,
        "POD_NAMESPACE": namespace,
        "HUB_SERVICE_HOST": "127.0.0.1",
        "HUB_SERVICE_PORT": str(free_port()),
        "PROXY_API_SERVICE_HOST": "127.0.0.1",
        "PROXY_API_SERVICE_PORT": str(free_port()),
        "PROXY_PUBLIC_SERVICE_HOST": "127.0.0.1",
        "PROXY_PUBLIC_SERVICE_PORT": str(free_port()),
        # the chart's Secret: the proxy token and cookie secret stay the same across restarts
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        "JPY_COOKIE_SECRET": secrets.token_hex(32),
        "KUMOHUB_USER_PASSWORD": USER_PASSWORD,
        "KUMOHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


@contextlib.contextmanager
def deploy_kumohub(
    cluster: EnvtestCluster,
    namespace: str,
    folder: Path,
    overrides: Mapping[str, Any] | None = None,
) -> Iterator[KubeHub]:
    """Install KumoHub into `namespace` and run it until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    values = chart_values(overrides)
    values_file = folder / "values.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    prepare_namespace(cluster, namespace, values)
    token = hub_token(cluster, namespace)
    env = hub_environment(cluster, namespace, folder, values_file, token)
    hub = KubeHub(cluster, namespace, folder, values, env, token)
    hub.url = f"http://127.0.0.1:{env['PROXY_PUBLIC_SERVICE_PORT']}"
    hub.hub_url = f"http://127.0.0.1:{env['HUB_SERVICE_PORT']}"
    try:
        hub.start_proxy()
        hub.start_hub()
        yield hub
    finally:
        hub.stop()
