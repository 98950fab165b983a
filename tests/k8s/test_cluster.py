"""Proof that the harness is a real Kubernetes API: kube-apiserver + etcd + fake kubelet.

Plain kubernetes_asyncio calls (no KubeSpawner), run with asyncio.run from sync tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sys
import time
import urllib.request
import uuid

import pytest
from kubernetes_asyncio.client import ApiClient, CoreV1Api, RbacAuthorizationV1Api, VersionApi
from kubernetes_asyncio.client.exceptions import ApiException

# A tiny HTTP server: binds the address given as argv[2] (the manifest says 0.0.0.0, the
# fake kubelet rewrites it to the pod's 127.0.0.N) and echoes what it sees of its
# environment.
SERVER = r"""
import http.server, json, os, sys
bind, port = sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "bind": bind,
            "env": {k: os.environ.get(k) for k in (
                "POD_IP", "POD_NAME", "POD_NAMESPACE", "GREETING", "GREETING_TWICE",
                "JUPYTERHUB_SERVICE_URL", "HOME")},
            "cwd": os.getcwd(),
            "pid": os.getpid(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((bind, port), H).serve_forever()
"""


def run(coro):
    return asyncio.run(coro)


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(fn, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


async def pod_gone(v1: CoreV1Api, ns: str, name: str) -> bool:
    try:
        await v1.read_namespaced_pod(name, ns)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def server_pod(name: str, port: int, **extra) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "kumohub-envtest"}},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [
                {
                    "name": "notebook",
                    "image": "kumohub/user:test",
                    "command": [sys.executable, "-c", SERVER],
                    "args": ["--bind", "0.0.0.0", str(port)],
                    "env": [
                        {"name": "GREETING", "value": "hello"},
                        {"name": "GREETING_TWICE", "value": "$(GREETING) $(GREETING)"},
                        {
                            "name": "JUPYTERHUB_SERVICE_URL",
                            "value": f"http://0.0.0.0:{port}/user/a/",
                        },
                        {
                            "name": "POD_IP",
                            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                        },
                        {
                            "name": "POD_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        },
                        {
                            "name": "POD_NAMESPACE",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                        },
                    ],
                }
            ],
        },
    }
    pod["spec"].update(extra)
    return pod


def http_get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def no_kubelet_errors(fake_kubelet):
    before = len(fake_kubelet.errors)
    yield
    assert fake_kubelet.errors[before:] == []


# ---------------------------------------------------------------------------------------


def test_apiserver_ready_real_version(k8s_cluster):
    status, body = k8s_cluster.request("/readyz?verbose")
    assert status == 200, body
    assert "readyz check passed" in body

    async def version():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            return await VersionApi(api).get_code()

    v = run(version())
    assert v.major == "1" and v.git_version.startswith("v1.34."), v
    assert k8s_cluster.server.startswith("https://127.0.0.1:")


def test_rbac_refuses_anonymous_and_unprivileged(k8s_cluster, k8s_namespace):
    ns = k8s_namespace
    # anonymous: authenticated as system:anonymous, which RBAC does not allow to list pods
    status, _ = k8s_cluster.request(f"/api/v1/namespaces/{ns}/pods", anonymous=True)
    assert status in (401, 403)
    # a wrong bearer token is refused at authentication
    status, _ = k8s_cluster.request(f"/api/v1/namespaces/{ns}/pods", token="not-a-token")
    assert status == 401
    # the static admin token works
    status, _ = k8s_cluster.request(f"/api/v1/namespaces/{ns}/pods", token=k8s_cluster.admin_token)
    assert status == 200

    alice = k8s_cluster.client_credentials("alice", ["kumohub-users"])

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration(alice)) as api:
            with pytest.raises(ApiException) as err:
                await CoreV1Api(api).list_namespaced_pod(ns)
            assert err.value.status == 403
            assert "alice" in err.value.body
            # grant reading pods in this namespace only (a Role: the aggregated ClusterRoles
            # view/edit/admin stay empty without kube-controller-manager)
            async with ApiClient(k8s_cluster.client_configuration()) as admin:
                rbac = RbacAuthorizationV1Api(admin)
                await rbac.create_namespaced_role(
                    ns,
                    {
                        "metadata": {"name": "pod-reader"},
                        "rules": [
                            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
                        ],
                    },
                )
                await rbac.create_namespaced_role_binding(
                    ns,
                    {
                        "metadata": {"name": "alice-pod-reader"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": "pod-reader",
                        },
                        "subjects": [
                            {
                                "apiGroup": "rbac.authorization.k8s.io",
                                "kind": "User",
                                "name": "alice",
                            }
                        ],
                    },
                )

            async def can_list():
                try:
                    await CoreV1Api(api).list_namespaced_pod(ns)
                    return True
                except ApiException as e:
                    assert e.status == 403
                    return False

            await wait_for(can_list, 10, "RBAC to pick up the RoleBinding")
            # ... but still not write, and not elsewhere
            with pytest.raises(ApiException) as err:
                await CoreV1Api(api).create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
            assert err.value.status == 403
            with pytest.raises(ApiException) as err:
                await CoreV1Api(api).list_namespaced_pod("default")
            assert err.value.status == 403

    run(scenario())


def test_pod_is_bound_running_reachable_and_deleted(k8s_cluster, fake_kubelet, k8s_namespace):
    ns, name, port = k8s_namespace, "echo-server", free_loopback_port()

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            await v1.create_namespaced_pod(ns, server_pod(name, port))

            async def running():
                pod = await v1.read_namespaced_pod(name, ns)
                return pod if pod.status.phase == "Running" else None

            pod = await wait_for(running, 20, "pod Running")
            return pod

    pod = run(scenario())
    ip = pod.status.pod_ip
    assert pod.spec.node_name == fake_kubelet.kubelet.node_name
    assert ipaddress.ip_address(ip).is_loopback and ip != "127.0.0.1", ip
    assert pod.status.host_ip == "127.0.0.1"
    assert pod.status.start_time is not None
    conds = {c.type: c.status for c in pod.status.conditions}
    assert conds["PodScheduled"] == conds["Ready"] == conds["ContainersReady"] == "True"
    (cs,) = pod.status.container_statuses
    assert cs.name == "notebook" and cs.ready and cs.started and cs.state.running is not None
    # ServiceAccount admission ran against the default SA the fake kubelet created
    assert pod.spec.service_account_name == "default"
    assert any(v.name.startswith("kube-api-access-") for v in pod.spec.volumes)

    def fetch():
        try:
            return http_get_json(f"http://{ip}:{port}/", timeout=2)
        except OSError:
            return None

    deadline = time.monotonic() + 15
    seen = fetch()
    while seen is None and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = fetch()
    assert seen is not None, fake_kubelet.pod_log(ns, name)
    assert seen["bind"] == ip
    env = seen["env"]
    assert env["POD_IP"] == ip
    assert env["POD_NAME"] == name and env["POD_NAMESPACE"] == ns
    assert env["GREETING"] == "hello" and env["GREETING_TWICE"] == "hello hello"
    assert env["JUPYTERHUB_SERVICE_URL"] == f"http://{ip}:{port}/user/a/"
    rt = fake_kubelet.runtime(ns, name)
    assert env["HOME"] == seen["cwd"] == str(rt.workdir)
    pid = seen["pid"]
    assert pid_alive(pid)

    async def delete():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            await v1.delete_namespaced_pod(name, ns)  # default grace period
            await wait_for(lambda: pod_gone(v1, ns, name), 20, "pod to disappear")

    run(delete())
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    assert fetch() is None
    assert fake_kubelet.runtime(ns, name) is None


@pytest.mark.parametrize(
    "code, phase, reason", [(0, "Succeeded", "Completed"), (3, "Failed", "Error")]
)
def test_process_exit_is_reported(k8s_cluster, k8s_namespace, code, phase, reason):
    ns, name = k8s_namespace, f"exits-{code}"
    pod = {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "notebook",
                    "image": "x",
                    "command": [sys.executable, "-c", f"import sys; sys.exit({code})"],
                }
            ],
        },
    }

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            await v1.create_namespaced_pod(ns, pod)

            async def finished():
                p = await v1.read_namespaced_pod(name, ns)
                return p if p.status.phase in ("Succeeded", "Failed") else None

            p = await wait_for(finished, 20, "pod to finish")
            await v1.delete_namespaced_pod(name, ns)
            await wait_for(lambda: pod_gone(v1, ns, name), 20, "pod to disappear")
            return p

    p = run(scenario())
    assert p.status.phase == phase
    term = p.status.container_statuses[0].state.terminated
    assert term.exit_code == code and term.reason == reason
    assert not p.status.container_statuses[0].ready


def test_start_failure_and_command_hook(k8s_cluster, fake_kubelet, k8s_namespace):
    """An image-only container cannot run (StartError) unless a hook maps it to a command."""
    ns, port = k8s_namespace, free_loopback_port()

    def hook(pod, argv, env):
        image = pod["spec"]["containers"][0]["image"]
        if image == "kumohub/static-files:1" and not argv:
            ip = env["POD_IP"]
            return [sys.executable, "-m", "http.server", "--bind", ip, str(port)], env
        return None

    def pod(name):
        return {
            "metadata": {"name": name},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "kumohub/static-files:1",
                        "env": [
                            {
                                "name": "POD_IP",
                                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                            }
                        ],
                    }
                ]
            },
        }

    async def phase_of(v1, name, phases):
        p = await v1.read_namespaced_pod(name, ns)
        return p if p.status.phase in phases else None

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            await v1.create_namespaced_pod(ns, pod("no-command"))
            failed = await wait_for(
                lambda: phase_of(v1, "no-command", ("Failed",)), 20, "start failure"
            )
            term = failed.status.container_statuses[0].state.terminated
            assert term.reason == "StartError" and "no command" in term.message

            fake_kubelet.kubelet.command_hook = hook
            try:
                await v1.create_namespaced_pod(ns, pod("hooked"))
                running = await wait_for(
                    lambda: phase_of(v1, "hooked", ("Running",)), 20, "hooked pod Running"
                )
            finally:
                fake_kubelet.kubelet.command_hook = None
            ip = running.status.pod_ip
            deadline = time.monotonic() + 15
            while True:
                try:
                    with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2) as resp:
                        assert resp.status == 200
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(fake_kubelet.pod_log(ns, "hooked")) from None
                    await asyncio.sleep(0.1)
            for name in ("no-command", "hooked"):
                await v1.delete_namespaced_pod(name, ns)
            for name in ("no-command", "hooked"):
                await wait_for(lambda n=name: pod_gone(v1, ns, n), 20, f"{name} to disappear")

    run(scenario())


def test_pvc_bound_protected_while_used_then_deleted(k8s_cluster, k8s_namespace):
    ns, claim = k8s_namespace, "claim-home"
    pvc = {
        "metadata": {"name": claim},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    user = {
        "metadata": {"name": "uses-claim"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "command": [sys.executable, "-c", "import time; time.sleep(600)"],
                }
            ],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            created = await v1.create_namespaced_persistent_volume_claim(ns, pvc)
            # StorageObjectInUseProtection admission is on, as in a real cluster
            assert "kubernetes.io/pvc-protection" in created.metadata.finalizers

            async def bound():
                p = await v1.read_namespaced_persistent_volume_claim(claim, ns)
                return p if p.status.phase == "Bound" else None

            p = await wait_for(bound, 20, "PVC Bound")
            assert p.status.capacity["storage"] == "2Gi"
            assert p.status.access_modes == ["ReadWriteOnce"]

            await v1.create_namespaced_pod(ns, user)

            async def running():
                p = await v1.read_namespaced_pod("uses-claim", ns)
                return p.status.phase == "Running"

            await wait_for(running, 20, "pod using the claim to run")
            await v1.delete_namespaced_persistent_volume_claim(claim, ns)
            await asyncio.sleep(1.0)
            terminating = await v1.read_namespaced_persistent_volume_claim(claim, ns)
            assert terminating.metadata.deletion_timestamp is not None  # in use: kept

            await v1.delete_namespaced_pod("uses-claim", ns, grace_period_seconds=1)

            async def pvc_gone():
                try:
                    await v1.read_namespaced_persistent_volume_claim(claim, ns)
                    return False
                except ApiException as e:
                    assert e.status == 404
                    return True

            await wait_for(pvc_gone, 20, "PVC to disappear once unused")
            await wait_for(lambda: pod_gone(v1, ns, "uses-claim"), 20, "pod to disappear")

    run(scenario())


def test_api_server_validates(k8s_cluster, k8s_namespace):
    ns = k8s_namespace

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            bad = {
                "metadata": {"name": "Bad_Name"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
            with pytest.raises(ApiException) as err:
                await v1.create_namespaced_pod(ns, bad)
            assert err.value.status == 422
            assert json.loads(err.value.body)["reason"] == "Invalid"
            no_containers = {"metadata": {"name": "empty"}, "spec": {"containers": []}}
            with pytest.raises(ApiException) as err:
                await v1.create_namespaced_pod(ns, no_containers)
            assert err.value.status == 422

    run(scenario())
    # unknown fields are refused under strict field validation (what kubectl does by default)
    status, body = k8s_cluster.request(
        f"/api/v1/namespaces/{ns}/pods?fieldValidation=Strict",
        method="POST",
        body={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "typo"},
            "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicyy": "Always"}]},
        },
    )
    assert status == 400 and "imagePullPolicyy" in body["message"], body


def test_namespace_deletion_is_finalized(k8s_cluster, fake_kubelet):
    """Deleting a namespace stops its pods and the namespace disappears (no controller-manager)."""
    ns, port = f"envtest-ns-delete-{uuid.uuid4().hex[:6]}", free_loopback_port()

    async def scenario():
        async with ApiClient(k8s_cluster.client_configuration()) as api:
            v1 = CoreV1Api(api)
            await v1.create_namespace({"metadata": {"name": ns}})

            async def has_sa():
                try:
                    await v1.read_namespaced_service_account("default", ns)
                    return True
                except ApiException:
                    return False

            await wait_for(has_sa, 20, "default ServiceAccount")
            cm = await v1.read_namespaced_config_map("kube-root-ca.crt", ns)
            assert cm.data["ca.crt"] == k8s_cluster.ca_file.read_text()
            await v1.create_namespaced_pod(ns, server_pod("srv", port))

            async def running():
                p = await v1.read_namespaced_pod("srv", ns)
                return p.status.phase == "Running"

            await wait_for(running, 20, "pod Running")
            pid = fake_kubelet.runtime(ns, "srv").process.pid
            await v1.delete_namespace(ns)

            async def ns_gone():
                try:
                    await v1.read_namespace(ns)
                    return False
                except ApiException as e:
                    return e.status == 404

            await wait_for(ns_gone, 60, "namespace to be finalized")
            return pid

    pid = run(scenario())
    assert not pid_alive(pid)
