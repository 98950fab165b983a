"""Pods and home claims KumoKubeSpawner builds, validated the way the API server would.

Every profile of every example settings document (local mode's example and the chart's
`custom.kumohub`) becomes a pod and a claim through KubeSpawner's own `get_pod_manifest()`
and `get_pvc_manifest()` (`_mock=True`: a dummy kubeconfig, no cluster contacted). Each is
checked strictly (unknown fields are errors) against the OpenAPI schemas of the EKS versions
KumoHub supports, then field by field against the profile.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_asyncio.config.kube_config
import kubernetes_validate
import pytest
import yaml
from jupyterhub import orm
from kubernetes_asyncio.client import ApiClient
from kumohub.hub_config.kubernetes import configure_kubernetes
from kumohub.spawner.kube import KumoKubeSpawner
from kumohub.spawner.manifest_checks import InvalidManifestError
from kumohub.spawner.pod_overrides import (
    GPU_RESOURCE,
    PROFILE_LABEL,
    TEAM_LABEL,
    USER_LABEL,
    hardening_overrides,
    service_account_for,
    storage_overrides,
)
from kumohub.spawner.profiles import resolve_selection
from tornado import web
from traitlets.config import Config

from kumohub.settings import Profile, Settings, load_settings, parse_settings, quantity_bytes
from kumohub.settings.kubernetes import is_dns_label, is_dns_subdomain, is_label_value

REPO = Path(__file__).resolve().parents[2]
# EKS versions in standard or extended support when this was written (kubernetes-validate
# ships schemas up to its own release; add versions here as EKS adds them).
EKS_VERSIONS = ("1.32.0", "1.33.0", "1.34.0", "1.35.0")
UNICODE_USER = "Ünïcode.User@corp"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {token: never-sent}}]
"""


def example_settings() -> dict[str, Settings]:
    """The local example and the chart's settings, as CI and the hub would load them."""
    chart_values = yaml.safe_load((REPO / "chart-values" / "values.yaml").read_text())
    return {
        "local-settings": load_settings(REPO / "hub_config" / "local-settings.yaml"),
        "chart-values": parse_settings(chart_values["custom"]["kumohub"], "chart-values"),
    }


EXAMPLES = example_settings()
PROFILE_CASES = [
    pytest.param(name, profile.slug, id=f"{name}-{profile.slug}")
    for name, settings in EXAMPLES.items()
    for profile in settings.profiles
]


@dataclass
class Group:
    name: str


@dataclass
class HubUser:
    """What KubeSpawner and the mixin read from JupyterHub's user object."""

    name: str
    groups: list[Group] = field(default_factory=list)
    id: int = 7
    url: str = "/user/someone/"

    @classmethod
    def with_groups(cls, name: str, groups: set[str] | frozenset[str]) -> HubUser:
        return cls(name, [Group(g) for g in sorted(groups)])


@dataclass
class Built:
    pod: dict[str, Any]
    pvc: dict[str, Any]
    spawner: KumoKubeSpawner

    @property
    def container(self) -> dict[str, Any]:
        [container] = self.pod["spec"]["containers"]
        return container

    @property
    def env(self) -> dict[str, str]:
        return {item["name"]: item.get("value", "") for item in self.container["env"]}

    def volume(self, name: str) -> dict[str, Any]:
        return next(v for v in self.pod["spec"]["volumes"] if v["name"] == name)

    def mount(self, path: str) -> dict[str, Any]:
        return next(m for m in self.container["volumeMounts"] if m["mountPath"] == path)


@pytest.fixture(scope="module", autouse=True)
def dummy_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """KubeSpawner loads a kubeconfig when constructed; this one points nowhere.

    kubernetes_asyncio reads $KUBECONFIG once, at import, into the default location it
    loads from; the location is set for this module's tests only.
    """
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_asyncio.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path)
        )
        yield


def build(
    settings: Settings,
    user: HubUser,
    options: Any,
    server_name: str = "",
    **config: Any,
) -> Built:
    """Apply options the way the hub does, then build the manifests in a running loop."""

    async def run() -> Built:
        spawner = KumoKubeSpawner(
            _mock=True,
            user=user,
            orm_spawner=orm.Spawner(name=server_name),
            kumohub_settings=settings,
            **config,
        )
        spawner.apply_user_options(spawner, options)
        pod = await spawner.get_pod_manifest()
        pvc = spawner.get_pvc_manifest()
        async with ApiClient() as api:
            return Built(
                api.sanitize_for_serialization(pod), api.sanitize_for_serialization(pvc), spawner
            )

    return asyncio.run(run())


def user_for(profile: Profile, name: str = UNICODE_USER) -> HubUser:
    return HubUser.with_groups(name, set(profile.allowed_groups) or {"data-science"})


def profile_named(settings: Settings, slug: str) -> Profile:
    return next(p for p in settings.profiles if p.slug == slug)


@pytest.mark.parametrize(("source", "slug"), PROFILE_CASES)
def test_every_example_profile_gives_a_valid_pod_and_home_claim(source: str, slug: str) -> None:
    settings = EXAMPLES[source]
    profile = profile_named(settings, slug)
    user = user_for(profile)
    built = build(settings, user, {"profile": slug})

    for version in EKS_VERSIONS:
        kubernetes_validate.validate(built.pod, version, strict=True)
        kubernetes_validate.validate(built.pvc, version, strict=True)

    selection = resolve_selection({"profile": slug}, settings.profiles, user_groups(user))
    assert built.container["image"] == selection.image
    check_resources(built, profile)
    check_gpu(built, profile)
    check_storage(built, settings, profile)
    check_hardening(built, settings)
    check_identity(built, settings, profile, user)
    check_server_settings(built, settings, user)
    check_time_limits(built, profile)


def user_groups(user: HubUser) -> frozenset[str]:
    return frozenset(g.name for g in user.groups)


def check_resources(built: Built, profile: Profile) -> None:
    resources = built.container["resources"]
    wanted = profile.resources
    assert float(resources["requests"]["cpu"]) == wanted.cpu_guarantee
    assert float(resources["limits"]["cpu"]) == wanted.cpu_limit
    assert int(resources["requests"]["memory"]) == quantity_bytes(wanted.mem_guarantee or "0")
    assert int(resources["limits"]["memory"]) == quantity_bytes(wanted.mem_limit or "0")


def check_gpu(built: Built, profile: Profile) -> None:
    limits = built.container["resources"]["limits"]
    spec = built.pod["spec"]
    if profile.gpu is None:
        assert GPU_RESOURCE not in limits
        assert not spec.get("tolerations")
        return
    assert limits[GPU_RESOURCE] == str(profile.gpu.count)
    assert GPU_RESOURCE not in built.container["resources"].get("requests", {}) or (
        built.container["resources"]["requests"][GPU_RESOURCE] == limits[GPU_RESOURCE]
    )
    for key, value in profile.gpu.node_selector.items():
        assert spec["nodeSelector"][key] == value
    for toleration in profile.gpu.tolerations:
        assert toleration.model_dump(exclude_none=True) in spec["tolerations"]


def check_storage(built: Built, settings: Settings, profile: Profile) -> None:
    home = settings.storage.home
    claim = built.pvc
    assert claim["metadata"]["name"] == built.spawner.pvc_name
    assert is_dns_label(claim["metadata"]["name"])
    assert claim["spec"]["storageClassName"] == home.storage_class
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == home.size
    home_volume = built.volume("home")
    assert home_volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert built.mount(str(home.mount_path))["name"] == "home"

    team = settings.storage.team
    if team is not None:
        volume = built.volume(f"shared-{team.name}")
        assert volume["persistentVolumeClaim"]["claimName"] == team.claim_name
        assert built.mount(str(team.mount_path)).get("readOnly", False) is team.read_only
    for dataset in settings.storage.datasets:
        volume = built.volume(f"dataset-{dataset.name}")
        assert volume["persistentVolumeClaim"] == {
            "claimName": dataset.claim_name,
            "readOnly": True,
        }
        assert built.mount(str(dataset.mount_path))["readOnly"] is True

    shm_mounts = [m for m in built.container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    if profile.shm_size:
        [mount] = shm_mounts
        assert built.volume(mount["name"])["emptyDir"] == {
            "medium": "Memory",
            "sizeLimit": profile.shm_size,
        }
    else:
        assert shm_mounts == []


def check_hardening(built: Built, settings: Settings) -> None:
    uid, gid = settings.kubernetes.uid, settings.kubernetes.gid
    pod_context = built.pod["spec"]["securityContext"]
    assert pod_context == {
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container_context = built.container["securityContext"]
    assert container_context["runAsUser"] == uid
    assert container_context["runAsGroup"] == gid
    assert container_context["runAsNonRoot"] is True
    assert container_context["allowPrivilegeEscalation"] is False
    assert container_context["privileged"] is False
    assert container_context["capabilities"] == {"drop": ["ALL"]}
    assert container_context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not built.pod["spec"].get("initContainers")
    assert built.pod["spec"]["enableServiceLinks"] is False
    env = built.env
    assert env["JUPYTERHUB_DISABLE_USER_CONFIG"] == "1"
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["JUPYTER_PREFER_ENV_PATH"] == "1"
    assert not {name for name in env if name.startswith("AWS_")}


def check_identity(built: Built, settings: Settings, profile: Profile, user: HubUser) -> None:
    spec = built.pod["spec"]
    account = service_account_for(user_groups(user), settings.kubernetes)
    assert spec.get("serviceAccountName") == account
    assert spec["automountServiceAccountToken"] is False
    labels = built.pod["metadata"]["labels"]
    assert labels[PROFILE_LABEL] == profile.slug
    assert all(is_label_value(labels[key]) for key in (USER_LABEL, TEAM_LABEL, PROFILE_LABEL))
    assert labels[USER_LABEL] == labels["hub.jupyter.org/username"]
    annotations = built.pod["metadata"]["annotations"]
    assert annotations[USER_LABEL] == user.name
    assert annotations["kumohub.io/groups"] == ",".join(sorted(user_groups(user)))
    if profile.hourly_cost is not None:
        assert float(annotations["kumohub.io/hourly-cost-usd"]) == pytest.approx(
            profile.hourly_cost
        )
    assert is_dns_subdomain(built.pod["metadata"]["name"])


def check_server_settings(built: Built, settings: Settings, user: HubUser) -> None:
    passed = json.loads(built.env["KUMOHUB_SERVER_SETTINGS"])
    assert passed["user"] == user.name
    assert passed["groups"] == sorted(user_groups(user))
    shared = [settings.storage.team] if settings.storage.team else []
    shared += list(settings.storage.datasets)
    assert passed["shared_roots"] == [str(volume.mount_path) for volume in shared]


def check_time_limits(built: Built, profile: Profile) -> None:
    args = built.container["args"]
    assert args[0] == "jupyterhub-singleuser" or "jupyterhub-singleuser" in args[0]
    shutdown = [a for a in args if a.startswith("--ServerApp.shutdown_no_activity_timeout=")]
    if profile.idle_timeout:
        [flag] = shutdown
        assert 0 < int(flag.split("=")[1]) <= profile.idle_timeout
        assert f"--MappingKernelManager.cull_idle_timeout={profile.idle_timeout // 2}" in args
    else:
        assert shutdown == []
    assert built.pod["spec"].get("activeDeadlineSeconds") == profile.max_age


# -- names derived from users and servers -----------------------------------------------


def test_unicode_username_gets_valid_names_and_one_home_for_all_servers() -> None:
    settings = EXAMPLES["chart-values"]
    user = HubUser.with_groups(UNICODE_USER, {"gpu-users"})
    default = build(settings, user, {"profile": "cpu-small"})
    named = build(settings, user, {"profile": "gpu-a10g"}, server_name="GPU temp #1 ✓")
    for built in (default, named):
        kubernetes_validate.validate(built.pod, EKS_VERSIONS[-1], strict=True)
        assert is_dns_subdomain(built.pod["metadata"]["name"])
        assert all(is_label_value(v) for v in built.pod["metadata"]["labels"].values())
        assert built.pod["metadata"]["annotations"]["hub.jupyter.org/username"] == UNICODE_USER
    assert named.pod["metadata"]["name"] != default.pod["metadata"]["name"]
    # The same claim (hence the same EFS directory) for every server, and again after the
    # claim is deleted and recreated: the name depends on the username only.
    again = build(settings, user, {"profile": "cpu-small"}, server_name="other")
    assert default.pvc["metadata"]["name"] == named.pvc["metadata"]["name"]
    assert again.pvc["metadata"]["name"] == default.pvc["metadata"]["name"]
    assert default.pvc["metadata"]["name"].startswith("home-")


def test_template_braces_in_a_username_stay_literal() -> None:
    settings = EXAMPLES["local-settings"]
    built = build(settings, HubUser.with_groups("{pod_name}x", set()), {"profile": "cpu-small"})
    annotations = built.pod["metadata"]["annotations"]
    assert annotations[USER_LABEL] == "{pod_name}x"
    assert is_label_value(built.pod["metadata"]["labels"][USER_LABEL])


def test_service_account_is_the_first_listed_matching_group() -> None:
    kubernetes = EXAMPLES["chart-values"].kubernetes
    both = frozenset({"gpu-users", "ml-platform", "data-science"})
    assert service_account_for(both, kubernetes) == "kumohub-ml-platform"
    assert service_account_for(frozenset({"gpu-users"}), kubernetes) == "kumohub-data-science"
    assert service_account_for(frozenset({"finance"}), kubernetes) == "kumohub-readonly"
    local = EXAMPLES["local-settings"].kubernetes
    assert service_account_for(both, local) is None


def test_custom_image_from_the_free_text_field_reaches_the_pod() -> None:
    settings = EXAMPLES["chart-values"]
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kumohub/team-llm:v3"
    admin = HubUser.with_groups("admin", {"ml-platform"})
    built = build(settings, admin, {"profile": "gpu-a10g", "custom_image": image})
    assert built.container["image"] == image
    assert built.pod["metadata"]["annotations"]["kumohub.io/image"] == image


def test_nothing_starts_without_accepted_options() -> None:
    async def start_unvalidated() -> web.HTTPError:
        spawner = KumoKubeSpawner(
            _mock=True,
            user=HubUser.with_groups("alice", {"data-science"}),
            orm_spawner=orm.Spawner(name=""),
            kumohub_settings=EXAMPLES["local-settings"],
        )
        with pytest.raises(web.HTTPError) as refused:
            spawner.start()
        return refused.value

    refused = asyncio.run(start_unvalidated())
    assert refused.status_code == 400 and "no profile was selected" in refused.log_message


def test_refused_options_raise_400_and_change_nothing() -> None:
    settings = EXAMPLES["local-settings"]
    alice = HubUser.with_groups("alice", {"data-science"})
    with pytest.raises(web.HTTPError) as refused:
        build(settings, alice, {"profile": "gpu-a10g"})
    assert refused.value.status_code == 400
    assert "gpu-a10g" in refused.value.log_message


# -- what the chart configures is kept; what it must not set is refused ------------------


def test_chart_labels_volumes_and_node_selector_are_kept() -> None:
    settings = EXAMPLES["local-settings"]
    bob = HubUser.with_groups("bob", {"gpu-users"})
    built = build(
        settings,
        bob,
        {"profile": "gpu-a10g"},
        extra_labels={"hub.jupyter.org/network-access-hub": "true"},
        volumes=[{"name": "extra", "emptyDir": {}}],
        volume_mounts=[{"name": "extra", "mountPath": "/srv/extra"}],
        node_selector={"kubernetes.io/arch": "amd64"},
    )
    assert built.pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert built.volume("extra") == {"name": "extra", "emptyDir": {}}
    assert built.pod["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "karpenter.k8s.aws/instance-gpu-name": "a10g",
    }
    kubernetes_validate.validate(built.pod, EKS_VERSIONS[-1], strict=True)


def test_static_aws_credentials_never_reach_the_pod() -> None:
    settings = EXAMPLES["local-settings"]
    alice = HubUser.with_groups("alice", {"data-science"})
    built = build(
        settings,
        alice,
        {"profile": "cpu-small"},
        environment={
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/admin",
            "AWS_REGION": "us-east-1",
        },
    )
    env = built.env
    assert "AWS_ACCESS_KEY_ID" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "AWS_ROLE_ARN" not in env
    assert env["AWS_REGION"] == "us-east-1"


def test_invalid_label_from_configuration_is_refused_before_the_api() -> None:
    settings = EXAMPLES["local-settings"]
    alice = HubUser.with_groups("alice", {"data-science"})
    with pytest.raises(InvalidManifestError) as invalid:
        build(settings, alice, {"profile": "cpu-small"}, extra_labels={"cost-centre": "R&D 42"})
    assert "metadata.labels['cost-centre']: 'R&D 42' is not a valid label value" in str(
        invalid.value.log_message
    )


def test_each_concern_is_a_function_testable_alone() -> None:
    settings = EXAMPLES["chart-values"]
    hardening = hardening_overrides(settings.kubernetes)
    assert hardening["uid"] == 1000 and hardening["fs_gid"] == 100
    assert hardening["init_containers"] == []
    gpu = resolve_selection({"profile": "gpu-4x-a10g"}, settings.profiles, {"ml-platform"})
    storage = storage_overrides(settings.storage, gpu)
    assert storage["pvc_name_template"] == "home-{username}"
    assert storage["delete_pvc"] is False
    assert {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "32G"}} in storage[
        "volumes"
    ]


# -- the hub's Kubernetes configuration and the form ------------------------------------


def test_configure_kubernetes_sets_kumohub_parts_over_the_chart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUMOHUB_USER_PASSWORD", "user-password-for-the-test")
    monkeypatch.setenv("KUMOHUB_ADMIN_PASSWORD", "admin-password-for-the-test-long-enough")
    monkeypatch.setenv("POD_NAMESPACE", "kumohub")
    settings = EXAMPLES["local-settings"].model_copy(update={"mode": "kubernetes"})
    c = Config()
    # What the z2jh chart's own configuration sets before hub.extraConfig runs.
    c.JupyterHub.services = [{"name": "chart-service", "url": "http://127.0.0.1:9"}]
    c.KubeSpawner.cmd = None
    c.KubeSpawner.extra_labels = {"hub.jupyter.org/network-access-hub": "true"}
    c.KubeSpawner.profile_list = [{"display_name": "chart profile", "default": True}]
    c.Spawner.consecutive_failure_limit = 5

    configure_kubernetes(c, settings)
    configure_kubernetes(c, settings)  # sets, never appends: the same result twice

    assert c.JupyterHub.spawner_class is KumoKubeSpawner
    assert c.KumoKubeSpawner.namespace == "kumohub"
    assert [s["name"] for s in c.JupyterHub.services] == ["chart-service", "idle-culler"]
    assert c.Spawner.consecutive_failure_limit == 0
    assert callable(c.JupyterHub.named_server_limit_per_user)

    bob = HubUser.with_groups("bob", {"gpu-users"})
    built = build(settings, bob, {"profile": "gpu-a10g"}, config=c)
    assert built.spawner.profile_list == []
    assert built.container["args"][0] == "jupyterhub-singleuser"
    assert "--ServerApp.shutdown_no_activity_timeout=900" in built.container["args"]
    assert built.pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    assert built.spawner.namespace == "kumohub"


def test_the_spawn_form_and_its_checks_are_kumohubs_not_kubespawners() -> None:
    settings = EXAMPLES["local-settings"]

    async def form_and_refusal() -> tuple[str, web.HTTPError]:
        spawner = KumoKubeSpawner(
            _mock=True,
            user=HubUser.with_groups("alice", {"data-science"}),
            orm_spawner=orm.Spawner(name=""),
            kumohub_settings=settings,
        )
        form = await spawner.get_options_form()
        with pytest.raises(web.HTTPError) as refused:
            spawner.run_options_from_form({"profile": ["gpu-a10g"], "image": ["pytorch"]})
        return form, refused.value

    form, refused = asyncio.run(form_and_refusal())
    assert 'class="kumohub-profile"' in form and 'value="cpu-large"' in form
    assert 'value="gpu-a10g"' not in form
    assert refused.status_code == 400 and "gpu-a10g" in refused.log_message
