"""Fixtures for tests against a real kube-apiserver (see tests/k8s/README.md).

k8s_cluster    (session)  envtest.EnvtestCluster: .server, .kubeconfig, .ca_file, .admin
                          (ClientCredentials: cert_file, key_file, kubeconfig), .admin_token,
                          .client_configuration() -> kubernetes_asyncio Configuration,
                          .client_credentials(user, groups), .request(path, ...), .env
fake_kubelet   (session)  envtest.KubeletThread wrapping a FakeKubelet: .runtime(ns, name),
                          .pod_log(ns, name), .errors, .kubelet (set .kubelet.command_hook,
                          .kubelet.base_env to customise process starts)
k8s_namespace  (module)   name of a fresh namespace with a `default` ServiceAccount; deleted
                          (and finalized by the fake kubelet) after the module

If kube-apiserver/etcd cannot be built, every test using these fixtures ERRORs with the
build's output: nothing is skipped.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid

import pytest

from .envtest import EnvtestCluster, EnvtestError, FakeKubelet, KubeletThread, build_binaries

_build: dict = {}


def pytest_collection_finish(session):
    """Build (or find cached) binaries once, before any test runs, so a cold build (minutes)
    is not charged to the first test's timeout. A failure is re-raised by k8s_cluster."""
    if not any("k8s_cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            "envtest: building/locating kube-apiserver + etcd (cold build: minutes)"
        )
    start = time.monotonic()
    try:
        _build["bin_dir"] = build_binaries()
    except EnvtestError as e:
        _build["error"] = e
    if reporter is not None:
        reporter.write_line(
            f"envtest: {_build.get('bin_dir') or 'BUILD FAILED'} ({time.monotonic() - start:.1f}s)"
        )


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory):
    if "error" in _build:
        raise _build["error"]
    cluster = EnvtestCluster(
        base_dir=tmp_path_factory.mktemp("envtest"), bin_dir=_build.get("bin_dir")
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def fake_kubelet(k8s_cluster, tmp_path_factory):
    venv_bin = os.path.dirname(sys.executable)
    path = os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/bin:/bin")])
    kubelet = FakeKubelet(
        k8s_cluster.client_configuration(),
        workdir_root=tmp_path_factory.mktemp("fake-kubelet"),
        path=path,
        ca_file=k8s_cluster.ca_file,
    )
    with KubeletThread(kubelet) as thread:
        yield thread


def _wait(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def k8s_namespace(request, k8s_cluster, fake_kubelet):
    base = re.sub(r"[^a-z0-9-]", "-", request.module.__name__.rsplit(".", 1)[-1].lower()).strip("-")
    name = f"{base[:40]}-{uuid.uuid4().hex[:6]}".strip("-")
    status, body = k8s_cluster.request(
        "/api/v1/namespaces",
        method="POST",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    assert status == 201, body
    _wait(
        lambda: k8s_cluster.request(f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
        30,
        f"default ServiceAccount in {name}",
    )
    yield name
    status, body = k8s_cluster.request(f"/api/v1/namespaces/{name}", method="DELETE")
    assert status in (200, 202, 404), body
    _wait(
        lambda: k8s_cluster.request(f"/api/v1/namespaces/{name}")[0] == 404,
        90,
        f"namespace {name} to be finalized",
        interval=0.25,
    )
