"""Test support (not product code): a fake kubelet plus the bits of kube-controller-manager
that tests against a bare kube-apiserver need.

There is no container runtime here. For every pod it sees (all namespaces, or one), it

* binds the pod to its node through the ``pods/binding`` subresource (what a scheduler does),
* allocates the pod its own loopback address 127.0.0.N (N from 10 up; never a 10.x address),
* runs the FIRST container's ``command`` + ``args`` as a local process (own process group,
  cwd and ``HOME`` in a per-pod work directory, ``PATH`` from the caller so that e.g.
  ``jupyterhub-singleuser`` resolves from the test virtualenv). Environment: simple ``value``
  entries, ``$(VAR)`` references, ``valueFrom.fieldRef`` (``status.podIP``, ``metadata.name``,
  ``metadata.namespace``, ``metadata.uid``, ``spec.nodeName``, ``spec.serviceAccountName``,
  ``status.hostIP``, labels/annotations) and ``secretKeyRef``/``configMapKeyRef`` read from the
  API. ``0.0.0.0`` in the args and in ``JUPYTERHUB_SERVICE_URL`` (configurable) is replaced
  by the pod's address, so a server that would listen on all interfaces in a container
  listens on its own 127.0.0.N here. A ``command_hook`` may rewrite argv/env per pod (e.g. to
  map an image with no ``command`` to a local program).
* reports status in ONE patch: phase Running, podIP(s), hostIP(s), startTime, conditions
  PodScheduled/Initialized/ContainersReady/Ready True, containerStatuses ready + running
  (what KubeSpawner reads),
* when the process exits, reports phase Succeeded/Failed and a terminated container state
  with the exit code (restartPolicy is not honoured: nothing restarts),
* when the pod is deleted (deletionTimestamp set): SIGTERM to the process group, SIGKILL after
  the grace period (capped), then deletes the pod with grace 0 so it disappears. Finalizers
  other than the kubelet's own are left alone, as a real kubelet does.

Controller-manager duties: a ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap
in every namespace; PVCs are marked Bound (no PersistentVolume is created) and their
``kubernetes.io/pvc-protection`` finalizer is removed once no running pod uses them;
terminating namespaces are emptied of common namespaced kinds and finalized.

Use ``KubeletThread`` to run it beside synchronous tests (own thread, own event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from .cluster import set_pdeathsig

log = logging.getLogger("kumohub.tests.fake_kubelet")

PVC_PROTECTION = "kubernetes.io/pvc-protection"
HOST_IP = "127.0.0.1"

# hook(pod, argv, env) -> (argv, env) | None ; may be async
CommandHook = Callable[[dict, list, dict], "tuple[list, dict] | Awaitable[Any] | None"]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodRuntime:
    namespace: str
    name: str
    uid: str
    ip: str
    workdir: Path
    log_file: Path
    container: str
    started_at: str
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    terminating: bool = False
    claims: set = field(default_factory=set)
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class _IPPool:
    def __init__(self, first: int, last: int) -> None:
        self._free = [f"127.0.0.{n}" for n in range(first, last + 1)]
        self._used: set[str] = set()

    def allocate(self) -> str:
        if not self._free:
            raise RuntimeError("fake kubelet: loopback address pool exhausted")
        ip = self._free.pop(0)
        self._used.add(ip)
        return ip

    def release(self, ip: str) -> None:
        if ip in self._used:
            self._used.discard(ip)
            self._free.append(ip)


class _Raw:
    """Minimal JSON-in/JSON-out access on top of kubernetes_asyncio's ApiClient (auth, TLS)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def _call(self, method, path, body, query, content_type, timeout):
        return await self.api.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )

    async def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict | None = None,
        content_type: str = "application/json",
        allow: tuple[int, ...] = (),
        timeout: float = 30,
    ) -> dict | None:
        resp = await self._call(method, path, body, query, content_type, timeout)
        try:
            data = await resp.read()
        finally:
            resp.release()
        if 200 <= resp.status < 300:
            return json.loads(data) if data else {}
        if resp.status in allow:
            return None
        raise ApiException(
            status=resp.status, reason=f"{method} {path}: {data.decode(errors='replace')[:2000]}"
        )

    async def open_stream(self, path: str, query: dict, timeout: float):
        resp = await self._call("GET", path, None, query, "application/json", timeout)
        if resp.status != 200:
            data = await resp.read()
            resp.release()
            raise ApiException(
                status=resp.status, reason=f"watch {path}: {data.decode(errors='replace')[:2000]}"
            )
        return resp


class FakeKubelet:
    WATCH_TIMEOUT_SECONDS = 240  # server-side end of each watch; it then resumes from its RV

    def __init__(
        self,
        configuration: Configuration,
        *,
        namespace: str | None = None,
        node_name: str = "kumohub-fake-node",
        workdir_root: str | os.PathLike | None = None,
        path: str | None = None,
        base_env: dict[str, str] | None = None,
        command_hook: CommandHook | None = None,
        rewrite_env: tuple[str, ...] = ("JUPYTERHUB_SERVICE_URL",),
        ip_pool: tuple[int, int] = (10, 250),
        max_grace_seconds: float = 10.0,
        ca_file: str | os.PathLike | None = None,
        scheduler_names: tuple[str, ...] | None = None,
        manage_namespaces: bool = True,
    ) -> None:
        """
        configuration: kubernetes_asyncio Configuration with rights to bind pods, patch
            pod/PVC status, delete pods, create service accounts (the cluster admin).
        namespace: only handle pods/PVCs in this namespace (None: all namespaces).
        workdir_root: per-pod work/home directories go below it (default: a temp dir).
        path: PATH for the processes (default: this process's PATH).
        base_env: extra environment for every process (before the container's env).
        command_hook: ``hook(pod, argv, env)`` returning ``(argv, env)`` (or None to keep);
            called before each start; may be a coroutine function.
        scheduler_names: only bind pods whose spec.schedulerName is in this tuple (None: all).
        ca_file: content of the ``kube-root-ca.crt`` ConfigMaps (skipped if None).
        """
        for n in ip_pool:
            if not 2 <= n <= 254:
                raise ValueError("ip_pool must stay inside 127.0.0.2-254")
        self.configuration = configuration
        self.namespace = namespace
        self.node_name = node_name
        self._own_workdir = workdir_root is None
        self.workdir_root = Path(workdir_root or tempfile.mkdtemp(prefix="kumohub-fake-kubelet-"))
        self.path = path if path is not None else os.environ.get("PATH", "/usr/bin:/bin")
        self.base_env = dict(base_env or {})
        self.command_hook = command_hook
        self.rewrite_env = tuple(rewrite_env)
        self.max_grace_seconds = max_grace_seconds
        self.ca_pem = Path(ca_file).read_text() if ca_file else None
        self.scheduler_names = scheduler_names
        self.manage_namespaces = manage_namespaces
        self._ips = _IPPool(*ip_pool)
        self.pods: dict[str, PodRuntime] = {}  # by uid
        self.errors: list[str] = []
        self._ns_ready: set[str] = set()
        self._ns_finalizing: set[str] = set()
        self._pvc_waiting: dict[str, set[str]] = {}  # namespace -> pvc names waiting on pods
        self._tasks: set[asyncio.Task] = set()
        self._raw: _Raw | None = None

    # -- public helpers ------------------------------------------------------------------

    def runtime(self, namespace: str, name: str) -> PodRuntime | None:
        for rt in list(self.pods.values()):
            if rt.namespace == namespace and rt.name == name:
                return rt
        return None

    def pod_log(self, namespace: str, name: str) -> str:
        rt = self.runtime(namespace, name)
        if rt is None:
            return ""
        try:
            return rt.log_file.read_text(errors="replace")
        except OSError:
            return ""

    # -- main loop -----------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Run until cancelled. ``ready()`` is called once all initial lists are handled."""
        async with ApiClient(configuration=self.configuration) as api:
            self._raw = _Raw(api)
            try:
                await self._ensure_node()
                synced = [asyncio.Event() for _ in range(3 if self.manage_namespaces else 2)]
                loops = [
                    self._watch_loop(self._path("pods"), self._on_pod, synced[0]),
                    self._watch_loop(self._path("persistentvolumeclaims"), self._on_pvc, synced[1]),
                ]
                if self.manage_namespaces:
                    loops.append(
                        self._watch_loop("/api/v1/namespaces", self._on_namespace, synced[2])
                    )
                tasks = [asyncio.create_task(c) for c in loops]
                waiter = asyncio.gather(*(e.wait() for e in synced))
                done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
                if waiter not in done:  # a loop died before sync
                    waiter.cancel()
                    for t in done:
                        t.result()
                if ready:
                    ready()
                await asyncio.gather(*tasks)
            finally:
                await self._shutdown()
                self._raw = None

    async def _shutdown(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for rt in list(self.pods.values()):
            await self._kill(rt, grace=2.0)
            self._ips.release(rt.ip)
        self.pods.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir_root, ignore_errors=True)

    def _path(self, resource: str) -> str:
        if self.namespace:
            return f"/api/v1/namespaces/{self.namespace}/{resource}"
        return f"/api/v1/{resource}"

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._error(f"{type(e).__name__}: {e}")

    def _error(self, msg: str) -> None:
        log.error("fake kubelet: %s", msg)
        self.errors.append(msg)

    async def _watch_loop(self, path: str, handler, synced: asyncio.Event) -> None:
        assert self._raw is not None
        while True:
            try:
                listing = await self._raw.req("GET", path)
                assert listing is not None
                for obj in listing.get("items", []):
                    await self._handle(handler, "ADDED", obj)
                synced.set()
                rv = listing["metadata"]["resourceVersion"]
                while True:
                    query = {
                        "watch": "true",
                        "resourceVersion": rv,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": str(self.WATCH_TIMEOUT_SECONDS),
                    }
                    resp = await self._raw.open_stream(
                        path, query, timeout=self.WATCH_TIMEOUT_SECONDS + 60
                    )
                    try:
                        while True:
                            line = await resp.content.readline()
                            if not line:
                                break
                            ev = json.loads(line)
                            obj = ev.get("object") or {}
                            if ev.get("type") == "ERROR":
                                raise ApiException(
                                    status=obj.get("code", 500), reason=obj.get("message")
                                )
                            rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                            if ev.get("type") == "BOOKMARK":
                                continue
                            await self._handle(handler, ev["type"], obj)
                    finally:
                        resp.release()
            except asyncio.CancelledError:
                raise
            except ApiException as e:
                if e.status != 410:  # 410 Gone: resource version too old, re-list quietly
                    self._error(f"watch {path}: {e.status} {e.reason}")
                    await asyncio.sleep(1)
            except Exception as e:
                log.warning("fake kubelet: watch %s: %r; re-listing", path, e)
                await asyncio.sleep(1)

    async def _handle(self, handler, typ: str, obj: dict) -> None:
        try:
            await handler(typ, obj)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            meta = obj.get("metadata", {})
            where = f"{meta.get('namespace')}/{meta.get('name')}"
            self._error(f"{handler.__name__} {where}: {type(e).__name__}: {e}")

    # -- node ----------------------------------------------------------------------------

    async def _ensure_node(self) -> None:
        assert self._raw is not None
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        await self._raw.req("POST", "/api/v1/nodes", node, allow=(409,))
        now = _now()
        resources = {"cpu": "64", "memory": "256Gi", "pods": "240", "ephemeral-storage": "100Gi"}
        status = {
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "addresses": [
                    {"type": "InternalIP", "address": HOST_IP},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "fake kubelet is posting ready status",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": "fake",
                    "kubeProxyVersion": "",
                    "containerRuntimeVersion": "fake://local-process",
                    "kernelVersion": "",
                    "osImage": "",
                    "bootID": "",
                    "machineID": "",
                    "systemUUID": "",
                },
            }
        }
        await self._raw.req(
            "PATCH",
            f"/api/v1/nodes/{self.node_name}/status",
            status,
            content_type="application/merge-patch+json",
        )

    # -- namespaces (controller-manager duties) -------------------------------------------

    async def _on_namespace(self, typ: str, ns: dict) -> None:
        assert self._raw is not None
        name = ns["metadata"]["name"]
        if typ == "DELETED":
            self._ns_ready.discard(name)
            self._ns_finalizing.discard(name)
            return
        if ns["metadata"].get("deletionTimestamp"):
            if name not in self._ns_finalizing and "kubernetes" in (
                ns.get("spec", {}).get("finalizers") or []
            ):
                self._ns_finalizing.add(name)
                self._spawn(self._finalize_namespace(name))
            return
        if name in self._ns_ready:
            return
        self._ns_ready.add(name)
        if self.ca_pem:
            cm = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "annotations": {"kubernetes.io/description": "fake kubelet: cluster CA"},
                },
                "data": {"ca.crt": self.ca_pem},
            }
            await self._raw.req(
                "POST", f"/api/v1/namespaces/{name}/configmaps", cm, allow=(409, 403, 404)
            )
        # last: once `default` exists, the namespace is fully prepared
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        await self._raw.req(
            "POST", f"/api/v1/namespaces/{name}/serviceaccounts", sa, allow=(409, 403, 404)
        )

    NAMESPACED_COLLECTIONS = (
        "/api/v1/namespaces/{ns}/pods",
        "/api/v1/namespaces/{ns}/persistentvolumeclaims",
        "/api/v1/namespaces/{ns}/services",
        "/api/v1/namespaces/{ns}/configmaps",
        "/api/v1/namespaces/{ns}/secrets",
        "/api/v1/namespaces/{ns}/serviceaccounts",
        "/api/v1/namespaces/{ns}/events",
        "/api/v1/namespaces/{ns}/resourcequotas",
        "/api/v1/namespaces/{ns}/limitranges",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
        "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
        "/apis/apps/v1/namespaces/{ns}/deployments",
        "/apis/apps/v1/namespaces/{ns}/replicasets",
        "/apis/apps/v1/namespaces/{ns}/statefulsets",
        "/apis/batch/v1/namespaces/{ns}/jobs",
    )

    async def _finalize_namespace(self, name: str, timeout: float = 60.0) -> None:
        """What the namespace controller does: delete the contents, then drop the finalizer."""
        assert self._raw is not None
        for tmpl in self.NAMESPACED_COLLECTIONS:
            await self._raw.req("DELETE", tmpl.format(ns=name), allow=(404, 405))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for kind in ("pods", "persistentvolumeclaims"):
            while loop.time() < deadline:
                items = (await self._raw.req("GET", f"/api/v1/namespaces/{name}/{kind}") or {}).get(
                    "items", []
                )
                if not items:
                    break
                await asyncio.sleep(0.2)
            else:
                self._error(f"namespace {name}: {kind} still present after {timeout}s")
        ns = await self._raw.req("GET", f"/api/v1/namespaces/{name}", allow=(404,))
        if ns is None:
            return
        ns.setdefault("spec", {})["finalizers"] = [
            f for f in ns["spec"].get("finalizers") or [] if f != "kubernetes"
        ]
        await self._raw.req("PUT", f"/api/v1/namespaces/{name}/finalize", ns, allow=(404, 409))

    # -- PVCs -----------------------------------------------------------------------------

    async def _on_pvc(self, typ: str, pvc: dict) -> None:
        assert self._raw is not None
        meta = pvc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if typ == "DELETED":
            self._pvc_waiting.get(ns, set()).discard(name)
            return
        if meta.get("deletionTimestamp"):
            if PVC_PROTECTION in (meta.get("finalizers") or []):
                await self._release_pvc(ns, name)
            return
        if (pvc.get("status") or {}).get("phase") != "Bound":
            spec = pvc.get("spec") or {}
            storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            status = {
                "status": {
                    "phase": "Bound",
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "capacity": {"storage": storage},
                }
            }
            await self._raw.req(
                "PATCH",
                f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}/status",
                status,
                content_type="application/merge-patch+json",
                allow=(404,),
            )

    async def _release_pvc(self, ns: str, name: str) -> None:
        """pvc-protection controller: drop the finalizer once no live pod uses the claim."""
        assert self._raw is not None
        pods = (await self._raw.req("GET", f"/api/v1/namespaces/{ns}/pods") or {}).get("items", [])
        for pod in pods:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for vol in (pod.get("spec") or {}).get("volumes") or []:
                if (vol.get("persistentVolumeClaim") or {}).get("claimName") == name:
                    self._pvc_waiting.setdefault(ns, set()).add(name)
                    return
        self._pvc_waiting.get(ns, set()).discard(name)
        pvc = await self._raw.req(
            "GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}", allow=(404,)
        )
        if pvc is None:
            return
        finalizers = pvc["metadata"].get("finalizers") or []
        if PVC_PROTECTION not in finalizers:
            return
        patch = [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": pvc["metadata"]["resourceVersion"],
            },
            {
                "op": "replace",
                "path": "/metadata/finalizers",
                "value": [f for f in finalizers if f != PVC_PROTECTION],
            },
        ]
        # 422/409: changed meanwhile; the next watch event retries
        await self._raw.req(
            "PATCH",
            f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}",
            patch,
            content_type="application/json-patch+json",
            allow=(404, 409, 422),
        )

    async def _recheck_pvcs(self, ns: str) -> None:
        for name in list(self._pvc_waiting.get(ns, ())):
            await self._release_pvc(ns, name)

    # -- pods -----------------------------------------------------------------------------

    async def _on_pod(self, typ: str, pod: dict) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid, ns = meta["uid"], meta["namespace"]
        rt = self.pods.get(uid)
        if typ == "DELETED":
            if rt is not None:
                self.pods.pop(uid, None)
                await self._kill(rt, grace=0)
                self._ips.release(rt.ip)
            await self._recheck_pvcs(ns)
            return
        if meta.get("deletionTimestamp"):
            if rt is None:
                if spec.get("nodeName") == self.node_name:
                    # ours but never started (or a previous run): just finalize
                    self._spawn(self._finalize_pod(ns, meta["name"], uid))
                return
            if not rt.terminating:
                rt.terminating = True
                grace = meta.get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = spec.get("terminationGracePeriodSeconds", 30)
                self._spawn(self._terminate(rt, min(float(grace), self.max_grace_seconds)))
            return
        if rt is not None:
            return
        node = spec.get("nodeName")
        if node and node != self.node_name:
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        if (
            node is None
            and self.scheduler_names is not None
            and spec.get("schedulerName") not in self.scheduler_names
        ):
            return
        await self._start_pod(pod)

    async def _start_pod(self, pod: dict) -> None:
        assert self._raw is not None
        meta, spec = pod["metadata"], pod["spec"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        base = f"/api/v1/namespaces/{ns}/pods/{name}"
        if not spec.get("nodeName"):
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
            }
            if await self._raw.req("POST", f"{base}/binding", binding, allow=(404, 409)) is None:
                return  # gone, or bound elsewhere meanwhile
            await self._event(
                pod,
                "Scheduled",
                f"Successfully assigned {ns}/{name} to {self.node_name}",
                "default-scheduler",
            )
        container = (spec.get("containers") or [{}])[0]
        workdir = self.workdir_root / ns / f"{name}-{uid[:8]}"
        workdir.mkdir(parents=True, exist_ok=True)
        rt = PodRuntime(
            namespace=ns,
            name=name,
            uid=uid,
            ip=self._ips.allocate(),
            workdir=workdir,
            log_file=workdir / "container.log",
            container=container.get("name", ""),
            started_at=_now(),
            claims={
                (v.get("persistentVolumeClaim") or {}).get("claimName")
                for v in spec.get("volumes") or []
                if v.get("persistentVolumeClaim")
            },
        )
        self.pods[uid] = rt
        pod.setdefault("spec", {})["nodeName"] = self.node_name
        pod.setdefault("status", {}).update({"podIP": rt.ip, "hostIP": HOST_IP})
        try:
            argv, env = await self._command(pod, container, rt)
            with open(rt.log_file, "ab") as out:
                rt.process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=str(workdir),
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    # killed if the kubelet thread dies (e.g. the test process is killed)
                    preexec_fn=set_pdeathsig,
                )
        except Exception as e:
            rt.exit_code = 128
            rt.exited.set()
            with open(rt.log_file, "a") as out:
                out.write(f"fake kubelet: cannot start container: {e}\n")
            await self._event(pod, "Failed", f"Error: {e}", "kubelet", type_="Warning")
            await self._patch_status(
                rt, pod, self._terminated_status(pod, rt, 128, "StartError", str(e))
            )
            return
        await self._patch_status(rt, pod, self._running_status(pod, rt))
        await self._event(pod, "Started", f"Started container {rt.container}", "kubelet")
        self._spawn(self._wait_exit(rt, pod))

    async def _command(
        self, pod: dict, container: dict, rt: PodRuntime
    ) -> tuple[list[str], dict[str, str]]:
        env: dict[str, str] = {
            "PATH": self.path,
            "HOME": str(rt.workdir),
            "HOSTNAME": rt.name,
            "LANG": "C.UTF-8",
        }
        env.update(self.base_env)
        container_env: dict[str, str] = {}
        for src in container.get("envFrom") or []:
            data = await self._env_source(rt.namespace, src)
            prefix = src.get("prefix", "")
            container_env.update({prefix + k: v for k, v in data.items()})
        for item in container.get("env") or []:
            if "valueFrom" in item:
                value = await self._value_from(pod, rt, item["valueFrom"])
                if value is None:
                    continue
            else:
                value = _expand(item.get("value", ""), container_env)
            container_env[item["name"]] = value
        for key in self.rewrite_env:
            if key in container_env:
                container_env[key] = container_env[key].replace("0.0.0.0", rt.ip)
        env.update(container_env)
        argv = [
            _expand(a, container_env)
            for a in (container.get("command") or []) + (container.get("args") or [])
        ]
        argv = [a.replace("0.0.0.0", rt.ip) for a in argv]
        if self.command_hook is not None:
            result = self.command_hook(pod, argv, env)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                argv, env = result
        if not argv:
            raise RuntimeError(
                f"container {rt.container!r} of {rt.namespace}/{rt.name} has no command; "
                "the fake kubelet cannot run images (give the pod a command or a command_hook)"
            )
        return list(argv), dict(env)

    async def _env_source(self, ns: str, src: dict) -> dict[str, str]:
        import base64

        assert self._raw is not None
        if "configMapRef" in src:
            ref = src["configMapRef"]
            obj = await self._raw.req(
                "GET", f"/api/v1/namespaces/{ns}/configmaps/{ref['name']}", allow=(404,)
            )
            if obj is None and not ref.get("optional"):
                raise RuntimeError(f"configmap {ref['name']} not found")
            return dict((obj or {}).get("data") or {})
        if "secretRef" in src:
            ref = src["secretRef"]
            obj = await self._raw.req(
                "GET", f"/api/v1/namespaces/{ns}/secrets/{ref['name']}", allow=(404,)
            )
            if obj is None and not ref.get("optional"):
                raise RuntimeError(f"secret {ref['name']} not found")
            return {
                k: base64.b64decode(v).decode() for k, v in ((obj or {}).get("data") or {}).items()
            }
        return {}

    async def _value_from(self, pod: dict, rt: PodRuntime, vf: dict) -> str | None:
        import base64

        assert self._raw is not None
        if "fieldRef" in vf:
            path = vf["fieldRef"].get("fieldPath", "")
            meta, spec = pod["metadata"], pod.get("spec") or {}
            simple = {
                "status.podIP": rt.ip,
                "status.podIPs": rt.ip,
                "status.hostIP": HOST_IP,
                "status.hostIPs": HOST_IP,
                "metadata.name": meta["name"],
                "metadata.namespace": meta["namespace"],
                "metadata.uid": meta["uid"],
                "spec.nodeName": self.node_name,
                "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
            }
            if path in simple:
                return simple[path]
            m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
            if m:
                return (meta.get(m.group(1)) or {}).get(m.group(2), "")
            raise RuntimeError(f"unsupported fieldRef {path!r}")
        ns = rt.namespace
        for key, kind in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
            if key in vf:
                ref = vf[key]
                obj = await self._raw.req(
                    "GET", f"/api/v1/namespaces/{ns}/{kind}/{ref['name']}", allow=(404,)
                )
                data = (obj or {}).get("data") or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise RuntimeError(f"{kind[:-1]} {ref['name']} key {ref['key']} not found")
                value = data[ref["key"]]
                return base64.b64decode(value).decode() if kind == "secrets" else value
        if "resourceFieldRef" in vf:
            return "0"
        raise RuntimeError(f"unsupported valueFrom {vf!r}")

    # -- status ---------------------------------------------------------------------------

    def _conditions(self, ready: bool, reason: str = "") -> list[dict]:
        now = _now()
        conds = []
        for typ in ("PodReadyToStartContainers", "Initialized", "PodScheduled"):
            conds.append(
                {"type": typ, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            )
        for typ in ("ContainersReady", "Ready"):
            c = {
                "type": typ,
                "status": "True" if ready else "False",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            if not ready:
                c["reason"] = reason
            conds.append(c)
        return conds

    def _container_statuses(
        self, pod: dict, rt: PodRuntime, state_first: dict, ready: bool
    ) -> list[dict]:
        statuses = []
        for i, c in enumerate((pod.get("spec") or {}).get("containers") or []):
            # only the first container runs; the others are reported like it
            state = (
                state_first
                if i == 0
                else {"running": {"startedAt": rt.started_at}}
                if ready
                else state_first
            )
            statuses.append(
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": f"fake://{c.get('image', '')}",
                    "containerID": f"fake://{rt.uid}/{c['name']}",
                    "ready": ready,
                    "started": "running" in state,
                    "restartCount": 0,
                    "state": state,
                    "lastState": {},
                }
            )
        return statuses

    def _init_statuses(self, pod: dict, rt: PodRuntime) -> list[dict]:
        return [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": f"fake://{c.get('image', '')}",
                "containerID": f"fake://{rt.uid}/{c['name']}",
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": rt.started_at,
                        "finishedAt": rt.started_at,
                    }
                },
            }
            for c in (pod.get("spec") or {}).get("initContainers") or []
        ]

    def _running_status(self, pod: dict, rt: PodRuntime) -> dict:
        return {
            "phase": "Running",
            "podIP": rt.ip,
            "podIPs": [{"ip": rt.ip}],
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "startTime": rt.started_at,
            "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
            "conditions": self._conditions(True),
            "initContainerStatuses": self._init_statuses(pod, rt),
            "containerStatuses": self._container_statuses(
                pod, rt, {"running": {"startedAt": rt.started_at}}, True
            ),
        }

    def _terminated_status(
        self, pod: dict, rt: PodRuntime, code: int, reason: str, message: str = ""
    ) -> dict:
        term = {
            "exitCode": code,
            "reason": reason,
            "startedAt": rt.started_at,
            "finishedAt": _now(),
            "containerID": f"fake://{rt.uid}/{rt.container}",
        }
        if message:
            term["message"] = message
        return {
            "phase": "Succeeded" if code == 0 else "Failed",
            "podIP": rt.ip,
            "podIPs": [{"ip": rt.ip}],
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "startTime": rt.started_at,
            "conditions": self._conditions(
                False, "PodCompleted" if code == 0 else "ContainersNotReady"
            ),
            "initContainerStatuses": self._init_statuses(pod, rt),
            "containerStatuses": self._container_statuses(pod, rt, {"terminated": term}, False),
        }

    async def _patch_status(self, rt: PodRuntime, pod: dict, status: dict) -> None:
        assert self._raw is not None
        # one strategic-merge patch, guarded by the pod's UID (a recreated pod with the same
        # name must not receive this status)
        body = {"metadata": {"uid": rt.uid}, "status": status}
        await self._raw.req(
            "PATCH",
            f"/api/v1/namespaces/{rt.namespace}/pods/{rt.name}/status",
            body,
            content_type="application/strategic-merge-patch+json",
            allow=(404, 409),
        )

    async def _event(
        self, pod: dict, reason: str, message: str, component: str, type_: str = "Normal"
    ) -> None:
        assert self._raw is not None
        meta = pod["metadata"]
        now = _now()
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component, "host": self.node_name},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):  # events are best effort, as in a real cluster
            await self._raw.req(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/events", ev, allow=(403, 404)
            )

    # -- process lifecycle ----------------------------------------------------------------

    async def _wait_exit(self, rt: PodRuntime, pod: dict) -> None:
        assert rt.process is not None
        code = await rt.process.wait()
        # the container's other processes (same group) do not outlive its main process
        _killpg(rt.process.pid, signal.SIGKILL)
        rt.exit_code = 128 - code if code < 0 else code
        rt.exited.set()
        if rt.terminating or self.pods.get(rt.uid) is not rt:
            return
        reason = "Completed" if rt.exit_code == 0 else "Error"
        await self._patch_status(rt, pod, self._terminated_status(pod, rt, rt.exit_code, reason))
        await self._recheck_pvcs(rt.namespace)

    async def _kill(self, rt: PodRuntime, grace: float) -> None:
        proc = rt.process
        if proc is None or proc.returncode is not None:
            if proc is not None:
                _killpg(proc.pid, signal.SIGKILL)
            return
        if grace > 0:
            _killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), grace)
        _killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)

    async def _terminate(self, rt: PodRuntime, grace: float) -> None:
        await self._kill(rt, grace)
        await self._finalize_pod(rt.namespace, rt.name, rt.uid)

    async def _finalize_pod(self, ns: str, name: str, uid: str) -> None:
        assert self._raw is not None
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        await self._raw.req(
            "DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", body, allow=(404, 409)
        )


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined references expand, ``$$`` escapes."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, value)


class KubeletThread:
    """Run a FakeKubelet in a daemon thread with its own event loop (for synchronous tests).

    with KubeletThread(FakeKubelet(cluster.client_configuration(), ...)) as kubelet:
        ...  # kubelet.kubelet is the FakeKubelet
    """

    def __init__(self, kubelet: FakeKubelet) -> None:
        self.kubelet = kubelet
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def __enter__(self) -> KubeletThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __getattr__(self, name: str):  # delegate helpers (runtime, pod_log, errors, ...)
        return getattr(self.kubelet, name)

    def start(self, timeout: float = 60.0) -> None:
        self._thread = threading.Thread(target=self._main, name="fake-kubelet", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"fake kubelet not ready after {timeout}s: {self.kubelet.errors}")
        if self._failure is not None:
            raise RuntimeError(
                f"fake kubelet failed to start: {self._failure!r}"
            ) from self._failure

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self._task = self.loop.create_task(self.kubelet.run(ready=self._ready.set))
            self.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as e:
            self._failure = e
            log.exception("fake kubelet crashed")
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro, timeout: float = 30.0):
        """Run a coroutine on the kubelet's loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        if self.loop is not None and self._task is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
        self._thread = None
        if self._failure is not None and not isinstance(self._failure, asyncio.CancelledError):
            raise RuntimeError(f"fake kubelet crashed: {self._failure!r}") from self._failure
