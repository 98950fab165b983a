"""KumoHub in Kubernetes mode, end to end, against a real kube-apiserver.

The real hub (JupyterHub 5.5 + KumoKubeSpawner on KubeSpawner 7.0) runs from the chart
values in chart-values/values.yaml, configured the way the z2jh chart configures it, behind
its own configurable-http-proxy, and talks to the API server with nothing but its
ServiceAccount's token and the chart's hub Role (tests/k8s/kube_hub.py). The namespace
enforces the `restricted` Pod Security Standard. The fake kubelet runs each pod's
`jupyterhub-singleuser` on its own 127.0.0.N; volumes are not mounted, so volume checks look
at what the API server stored.

The tests share one deployment (its start-up and each spawn cost seconds of CPU). In file
order, the servers the first tests start are the ones the hub restart must keep; run alone,
a test starts the servers it needs itself.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.client import HubClient, error_message
from tests.support.processes import wait_until

from .kube_hub import KubeHub, deploy_kumohub

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kumohub"
CPU_IMAGE = f"{ECR}/user-cpu:2026.11"
GPU_IMAGE = f"{ECR}/user-gpu:2026.11"
SINGLEUSER_PORT = 8888  # KubeSpawner's default; every pod has its own address
# A label a platform engineer might add in singleuser.extraLabels: fine for `alice`, not a
# valid label value for an email address such as `dana@kumo.example`.
OWNER_LABEL = "kumo.example/owner"
CHART_OVERRIDES = {
    "singleuser": {
        "extraLabels": {
            "hub.jupyter.org/network-access-hub": "true",
            OWNER_LABEL: "{unescaped_username}",
        }
    }
}
CHART_TOLERATIONS = [
    {"key": key, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    for key in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
HARDENED_CONTAINER = {
    "runAsUser": 1000,
    "runAsGroup": 100,
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
HARDENED_POD = {
    "runAsUser": 1000,
    "runAsGroup": 100,
    "runAsNonRoot": True,
    "fsGroup": 100,
    "seccompProfile": {"type": "RuntimeDefault"},
}
NOT_AVAILABLE = "does not exist or is not available to you"


def allow_root(pod: dict, argv: list[str], env: dict[str, str]) -> tuple[list, dict] | None:
    """The fake kubelet runs processes as the test's own user, not the pod's uid 1000: when
    that is root, jupyter-server refuses to start without --allow-root (a real pod never
    runs as root: runAsNonRoot is set and the API server checked it)."""
    if os.geteuid() == 0 and argv and argv[0] == "jupyterhub-singleuser":
        return [*argv, "--allow-root"], env
    return None


@pytest.fixture(scope="module")
def kumohub(k8s_cluster, fake_kubelet, k8s_namespace, tmp_path_factory) -> Iterator[KubeHub]:
    fake_kubelet.kubelet.command_hook = allow_root
    try:
        with deploy_kumohub(
            k8s_cluster, k8s_namespace, tmp_path_factory.mktemp("kumohub"), CHART_OVERRIDES
        ) as hub:
            yield hub
    finally:
        fake_kubelet.kubelet.command_hook = None


@pytest.fixture(autouse=True)
def no_kubelet_errors(fake_kubelet) -> Iterator[None]:
    before = len(fake_kubelet.errors)
    yield
    assert fake_kubelet.errors[before:] == []


# -- helpers ------------------------------------------------------------------------------


def pods_of(hub: KubeHub, user: str) -> list[dict[str, Any]]:
    return [
        pod
        for pod in hub.pods()
        if pod["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == user
    ]


def the_pod_of(hub: KubeHub, user: str) -> dict[str, Any]:
    pods = pods_of(hub, user)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def claim(hub: KubeHub, name: str) -> dict[str, Any] | None:
    return next((c for c in hub.claims() if c["metadata"]["name"] == name), None)


def container(pod: dict[str, Any]) -> dict[str, Any]:
    [notebook] = pod["spec"]["containers"]
    return notebook


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container(pod).get("env", [])}


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def follow_progress(client: HubClient, timeout: float = 150) -> list[dict[str, Any]]:
    """The spawn's progress events as the spawn-pending page reads them, up to the last."""
    events: list[dict[str, Any]] = []
    response = client.api(
        "GET", f"/users/{client.user}/server/progress", stream=True, timeout=timeout
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + timeout
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data:"):
            event = json.loads(line[5:])
            events.append(event)
            if event.get("ready") or event.get("failed"):
                break
        assert time.monotonic() < deadline, f"spawn still going after {timeout}s: {events}"
    response.close()
    return events


def reach_server(client: HubClient) -> dict[str, Any]:
    """Through the proxy, as a browser: the OAuth dance into the lab, then the REST API."""
    lab = client.open_server()
    assert lab.status_code == 200, lab.text[-2000:]
    assert lab.url.endswith(f"/user/{client.user}/lab")
    assert '"appName": "JupyterLab"' in lab.text
    status = client.server_api("GET", "api/status")
    assert status.status_code == 200, status.text
    return status.json()


def running_server(hub: KubeHub, user: str, options: dict[str, str]) -> HubClient:
    """`user` signed in with a ready server (started with `options` if none runs)."""
    client = hub.signed_in(user)
    if client.server_model() is None:
        response = client.api_spawn(options)
        assert response.status_code in (201, 202), error_message(response)
    client.wait_ready(timeout=150)
    return client


def snapshot(hub: KubeHub) -> set[tuple[str, str, str]]:
    """Every pod and claim in the namespace, by kind, name and uid."""
    return {("pod", p["metadata"]["name"], p["metadata"]["uid"]) for p in hub.pods()} | {
        ("claim", c["metadata"]["name"], c["metadata"]["uid"]) for c in hub.claims()
    }


def server_alive(hub: KubeHub, fake_kubelet, pod: dict[str, Any]) -> bool:
    """The fake kubelet runs this very pod (same uid) and its process has not exited."""
    runtime = fake_kubelet.runtime(hub.namespace, pod["metadata"]["name"])
    if runtime is None or runtime.uid != pod["metadata"]["uid"] or runtime.process is None:
        return False
    return runtime.process.returncode is None


def assert_shared_volumes(pod: dict[str, Any], home_claim: str) -> None:
    """Home on its own claim, the team folder read-write, the dataset read-only."""
    volumes = by_name(pod["spec"]["volumes"])
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": home_claim}
    assert volumes["shared-team"]["persistentVolumeClaim"] == {"claimName": "team-efs"}
    assert volumes["dataset-reference-data"]["persistentVolumeClaim"] == {
        "claimName": "datasets-efs",
        "readOnly": True,
    }
    mounts = {m["mountPath"]: m for m in container(pod)["volumeMounts"]}
    assert mounts["/home/jovyan"]["name"] == "home"
    assert mounts["/home/jovyan/team"]["name"] == "shared-team"
    assert not mounts["/home/jovyan/team"].get("readOnly", False)
    assert mounts["/home/jovyan/datasets"] == {
        "name": "dataset-reference-data",
        "mountPath": "/home/jovyan/datasets",
        "readOnly": True,
    }


def assert_hardened(pod: dict[str, Any], service_account: str) -> None:
    spec = pod["spec"]
    assert spec["securityContext"] == HARDENED_POD
    assert container(pod)["securityContext"] == HARDENED_CONTAINER
    assert spec["serviceAccountName"] == service_account
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec.get("initContainers", []) == []
    env = env_of(pod)
    assert env["PYTHONNOUSERSITE"] == "1" and env["JUPYTERHUB_DISABLE_USER_CONFIG"] == "1"
    assert not [name for name in env if name.startswith("AWS_")]


# -- the tests ------------------------------------------------------------------------------


def test_cpu_profile_becomes_the_pod_and_home_claim_the_api_server_stored(
    kumohub: KubeHub, fake_kubelet
) -> None:
    alice = kumohub.signed_in("alice")
    form = alice.spawn_form()
    assert form.status_code == 200
    assert 'value="cpu-small"' in form.text and 'value="cpu-large"' in form.text
    assert "gpu-a10g" not in form.text  # not in gpu-users

    response = alice.submit_spawn_form([("profile", "cpu-small"), ("image", "datascience")])
    assert response.status_code == 200, error_message(response)
    assert response.url.endswith("/hub/spawn-pending/alice")
    events = follow_progress(alice)
    assert events[-1].get("ready"), events
    messages = " | ".join(e.get("message", "") for e in events)
    # the pod's own events, from the API server, on the spawn-pending page
    assert "Successfully assigned" in messages and "kumohub-fake-node" in messages

    pod = the_pod_of(kumohub, "alice")
    meta, spec = pod["metadata"], pod["spec"]
    assert pod["status"]["phase"] == "Running"
    expected_labels = {
        "kumohub.io/user": "alice",
        "kumohub.io/team": "data-science",
        "kumohub.io/profile": "cpu-small",
        "component": "singleuser-server",
        "release": "kumohub",
        "hub.jupyter.org/network-access-hub": "true",
        OWNER_LABEL: "alice",
    }
    assert expected_labels.items() <= meta["labels"].items(), meta["labels"]
    annotations = meta["annotations"]
    assert annotations["kumohub.io/hourly-cost-usd"] == "0.05"
    assert annotations["kumohub.io/image"] == CPU_IMAGE
    assert annotations["kumohub.io/groups"] == "data-science"

    notebook = container(pod)
    assert notebook["image"] == CPU_IMAGE
    assert notebook["resources"] == {
        "limits": {"cpu": "1", "memory": "4G"},
        "requests": {"cpu": "500m", "memory": "2G"},
    }
    assert "nodeSelector" not in spec
    assert spec["tolerations"][:2] == CHART_TOLERATIONS
    assert GPU_TOLERATION not in spec["tolerations"]
    assert spec["priorityClassName"] == "kumohub-default-priority"
    assert spec["schedulerName"] == "kumohub-user-scheduler"
    assert "shm" not in by_name(spec["volumes"])  # cpu-small sets no /dev/shm size
    assert_shared_volumes(pod, "home-alice")
    assert_hardened(pod, "kumohub-data-science")
    server_settings = json.loads(env_of(pod)["KUMOHUB_SERVER_SETTINGS"])
    assert server_settings["user"] == "alice"
    assert server_settings["workgroup"] == "data-science"
    assert server_settings["shared_roots"] == ["/home/jovyan/team", "/home/jovyan/datasets"]

    home = claim(kumohub, "home-alice")
    assert home is not None
    assert home["spec"]["storageClassName"] == "efs-home"
    assert home["spec"]["accessModes"] == ["ReadWriteMany"]
    assert home["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert home["status"]["phase"] == "Bound"
    assert home["metadata"]["labels"]["hub.jupyter.org/username"] == "alice"

    # the fake kubelet runs the server on the pod's address; the proxy routes there
    assert server_alive(kumohub, fake_kubelet, pod)
    pod_url = f"http://{pod['status']['podIP']}:{SINGLEUSER_PORT}"
    assert kumohub.routes()["/user/alice"]["target"] == pod_url
    status = reach_server(alice)
    assert status["kernels"] == 0


def test_stop_deletes_the_pod_keeps_the_home_and_the_next_spawn_reuses_it(
    kumohub: KubeHub, fake_kubelet
) -> None:
    alice = running_server(kumohub, "alice", {"profile": "cpu-small"})
    first = the_pod_of(kumohub, "alice")
    home = claim(kumohub, "home-alice")
    assert home is not None

    assert alice.stop().status_code in (202, 204)
    alice.wait_stopped()
    wait_until(lambda: pods_of(kumohub, "alice") == [], timeout=30, what="alice's pod deleted")
    wait_until(
        lambda: not server_alive(kumohub, fake_kubelet, first),
        timeout=30,
        what="alice's server process to end",
    )
    kept = claim(kumohub, "home-alice")
    assert kept is not None and "deletionTimestamp" not in kept["metadata"]
    assert kept["metadata"]["uid"] == home["metadata"]["uid"]

    response = alice.api_spawn({"profile": "cpu-large"})
    assert response.status_code in (201, 202), error_message(response)
    alice.wait_ready(timeout=150)
    second = the_pod_of(kumohub, "alice")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert second["metadata"]["labels"]["kumohub.io/profile"] == "cpu-large"
    assert container(second)["resources"]["limits"] == {"cpu": "8", "memory": "32G"}
    assert_shared_volumes(second, "home-alice")
    homes = [c for c in kumohub.claims() if c["metadata"]["name"].startswith("home-alice")]
    assert [c["metadata"]["uid"] for c in homes] == [home["metadata"]["uid"]]
    reach_server(alice)


def test_gpu_profile_gets_the_gpu_its_node_pool_and_shared_memory(
    kumohub: KubeHub, fake_kubelet
) -> None:
    bob = kumohub.signed_in("bob")
    assert 'value="gpu-a10g"' in bob.spawn_form().text  # bob is in gpu-users
    response = bob.api_spawn({"profile": "gpu-a10g", "image": "pytorch"})
    assert response.status_code in (201, 202), error_message(response)
    bob.wait_ready(timeout=150)

    pod = the_pod_of(kumohub, "bob")
    meta, spec, notebook = pod["metadata"], pod["spec"], container(pod)
    assert meta["labels"]["kumohub.io/profile"] == "gpu-a10g"
    assert meta["labels"]["kumohub.io/team"] == "data-science"
    assert meta["annotations"]["kumohub.io/hourly-cost-usd"] == "1.21"
    assert meta["annotations"]["kumohub.io/groups"] == "data-science,gpu-users"
    assert notebook["image"] == GPU_IMAGE
    # the API server defaults an extended resource's request to its limit
    assert notebook["resources"] == {
        "limits": {"cpu": "4", "memory": "16G", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "3", "memory": "14G", "nvidia.com/gpu": "1"},
    }
    assert spec["nodeSelector"] == {"karpenter.k8s.aws/instance-gpu-name": "a10g"}
    assert spec["tolerations"][:3] == [*CHART_TOLERATIONS, GPU_TOLERATION]
    assert spec["activeDeadlineSeconds"] == 28800  # the profile's max_age
    volumes = by_name(spec["volumes"])
    assert volumes["shm"] == {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8G"}}
    assert {"name": "shm", "mountPath": "/dev/shm"} in notebook["volumeMounts"]
    assert_shared_volumes(pod, "home-bob")
    assert_hardened(pod, "kumohub-data-science")
    # GPU servers stop sooner when idle: half the profile's 1800 s for kernels, half for the server
    assert "--ServerApp.shutdown_no_activity_timeout=900" in notebook["args"]
    assert "--MappingKernelManager.cull_idle_timeout=900" in notebook["args"]

    assert server_alive(kumohub, fake_kubelet, pod)
    reach_server(bob)


TAMPERED = [
    ("erin", "", {"profile": "gpu-a10g"}, f"profile 'gpu-a10g' {NOT_AVAILABLE}"),
    ("erin", "", {"profile": "no-such-profile"}, f"profile 'no-such-profile' {NOT_AVAILABLE}"),
    (
        "erin",
        "",
        {"profile": "cpu-small", "image": "pytorch"},
        "image 'pytorch' does not exist in profile 'cpu-small'",
    ),
    ("erin", "", {"profile": "cpu-small", "node_selector": {"x": "y"}}, "unknown spawn option"),
    ("erin", "", {"profile": ["cpu-small"]}, "'profile' must be a string, not an array"),
    ("erin", "gpu", {"profile": "gpu-a10g"}, f"profile 'gpu-a10g' {NOT_AVAILABLE}"),
    (
        "mallory",
        "",
        {"profile": "gpu-a10g", "custom_image": f"{ECR}/team:1; docker.io/evil/miner:1"},
        "custom image",
    ),
    ("mallory", "", {"profile": "gpu-a10g", "custom_image": "docker.io/evil/miner:1"}, "in full"),
]


def test_tampered_rest_spawns_create_no_pod_and_no_claim(kumohub: KubeHub) -> None:
    before = snapshot(kumohub)
    clients = {user: kumohub.signed_in(user) for user in ("erin", "mallory")}
    for user, server, options, message in TAMPERED:
        response = clients[user].api_spawn(options, server)
        assert response.status_code == 400, (options, response.status_code, response.text)
        assert message in error_message(response), (options, error_message(response))
    for client in clients.values():
        model = client.api("GET", f"/users/{client.user}").json()
        assert model["servers"] == {}, model
    assert snapshot(kumohub) == before
    assert claim(kumohub, "home-erin") is None and claim(kumohub, "home-mallory") is None


def test_hub_restart_keeps_every_pod_and_restores_lost_routes(
    kumohub: KubeHub, fake_kubelet
) -> None:
    alice = running_server(kumohub, "alice", {"profile": "cpu-small"})
    bob = running_server(kumohub, "bob", {"profile": "gpu-a10g"})
    for client in (alice, bob):
        reach_server(client)
    before = {user: the_pod_of(kumohub, user) for user in ("alice", "bob")}

    kumohub.stop_hub()
    # a proxy that lost a route (e.g. restarted meanwhile) is repaired by the new hub
    kumohub.delete_route("/user/alice")
    # while the hub is away, the proxy still serves bob's server
    version = requests.get(f"{kumohub.url}/user/bob/api", timeout=10)
    assert version.status_code == 200 and "version" in version.json()
    kumohub.start_hub()

    wait_until(lambda: "/user/alice" in kumohub.routes(), timeout=60, what="alice's route restored")
    for user, pod in before.items():
        now = the_pod_of(kumohub, user)
        assert now["metadata"]["uid"] == pod["metadata"]["uid"], user
        assert "deletionTimestamp" not in now["metadata"]
        assert server_alive(kumohub, fake_kubelet, now), user
        target = f"http://{pod['status']['podIP']}:{SINGLEUSER_PORT}"
        assert kumohub.routes()[f"/user/{user}"]["target"] == target
    for client in (alice, bob):  # the browser sessions from before the restart still work
        assert client.server_model()["ready"], client.user
        assert client.server_api("GET", "api/status").status_code == 200, client.user
    reach_server(kumohub.signed_in("alice"))  # so does a new sign-in through the new hub

    # the new hub process is in charge: it stops bob's pod and keeps bob's home
    assert bob.stop().status_code in (202, 204)
    bob.wait_stopped()
    wait_until(lambda: pods_of(kumohub, "bob") == [], timeout=30, what="bob's pod deleted")
    assert claim(kumohub, "home-bob") is not None


def test_invalid_label_is_refused_by_kumohub_before_the_api_server_sees_it(
    kumohub: KubeHub,
) -> None:
    dana = kumohub.signed_in("dana@kumo.example")
    before = snapshot(kumohub)
    page = dana.submit_spawn_form([("profile", "cpu-small"), ("image", "datascience")])
    if page.status_code != 500:  # the spawn had not failed yet when the hub answered
        assert page.status_code == 200, error_message(page)
        pending = f"{kumohub.url}/hub/spawn-pending/{dana.user}"

        def failed() -> bool:
            nonlocal page
            page = dana.session.get(pending, timeout=30)
            return "Spawn failed" in page.text

        wait_until(failed, timeout=60, what="dana's spawn to fail")
    # the spawn page tells dana why
    assert (
        f"KumoHub built an invalid pod: metadata.labels[&#39;{OWNER_LABEL}&#39;]: "
        "&#39;dana@kumo.example&#39; is not a valid label value"
    ) in page.text, page.text
    # nothing reached the API server: no pod, and not even dana's home claim
    assert snapshot(kumohub) == before
    assert dana.server_model() is None


def stored_as_new(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """A stored pod's spec as a new object: what a client would send to create it."""
    body = {"apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(pod["spec"])}
    body["spec"].pop("nodeName", None)  # set by binding, not by the client
    body["metadata"] = {
        "name": name,
        "labels": dict(pod["metadata"]["labels"]),
        "annotations": dict(pod["metadata"]["annotations"]),
    }
    return body


def test_the_api_server_refuses_what_kumohub_refused_and_unhardened_pods(
    kumohub: KubeHub,
) -> None:
    running_server(kumohub, "alice", {"profile": "cpu-small"})
    alice_pod = the_pod_of(kumohub, "alice")
    pods = f"/api/v1/namespaces/{kumohub.namespace}/pods?dryRun=All"

    def create_as_hub(body: dict[str, Any]) -> tuple[int, Any]:
        return kumohub.cluster.request(pods, method="POST", body=body, token=kumohub.token)

    # the same pod with dana's owner label: the API server refuses it (422)
    dana = stored_as_new(alice_pod, "jupyter-dana-kumo-example")
    dana["metadata"]["labels"][OWNER_LABEL] = "dana@kumo.example"
    status, answer = create_as_hub(dana)
    assert status == 422, answer
    assert answer["reason"] == "Invalid"
    assert "dana@kumo.example" in answer["message"] and "metadata.labels" in answer["message"]

    # ...and accepts it with a valid label value: the label was the only problem
    dana["metadata"]["labels"][OWNER_LABEL] = "dana-kumo-example"
    status, answer = create_as_hub(dana)
    assert status == 201, answer

    # the namespace enforces `restricted`: KumoHub's pods pass, an unhardened one does not
    unhardened = stored_as_new(alice_pod, "jupyter-unhardened")
    unhardened["spec"].pop("securityContext")
    container(unhardened).pop("securityContext")
    status, answer = create_as_hub(unhardened)
    assert status == 403, answer
    assert 'violates PodSecurity "restricted:latest"' in answer["message"]
    # dry runs: nothing was stored
    assert {p["metadata"]["name"] for p in kumohub.pods()}.isdisjoint(
        {"jupyter-dana-kumo-example", "jupyter-unhardened"}
    )


def test_the_hub_has_only_the_charts_rights(kumohub: KubeHub) -> None:
    def as_hub(path: str, method: str = "GET", body: Any = None) -> int:
        return kumohub.cluster.request(path, method=method, body=body, token=kumohub.token)[0]

    ns = kumohub.namespace
    assert as_hub(f"/api/v1/namespaces/{ns}/pods") == 200
    assert as_hub(f"/api/v1/namespaces/{ns}/events") == 200
    assert as_hub("/api/v1/pods") == 403  # no cluster-wide view
    assert as_hub("/api/v1/namespaces/default/pods") == 403
    assert as_hub("/api/v1/nodes") == 403
    assert as_hub(f"/api/v1/namespaces/{ns}/serviceaccounts") == 403
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}}
    assert as_hub(f"/api/v1/namespaces/{ns}/serviceaccounts", "POST", account) == 403
    assert as_hub(f"/api/v1/namespaces/{ns}/configmaps") == 403
