"""Test support: a real kube-apiserver + etcd on loopback, and a fake kubelet.

Not product code. ``cluster.EnvtestCluster`` builds (via ``build.sh``) or reuses cached
kube-apiserver/etcd binaries and runs them the way controller-runtime's envtest does;
``fake_kubelet.FakeKubelet`` plays the node: binds pods, runs their command as local
processes on 127.0.0.N and reports status, plus the few controller-manager duties tests need.
"""

from .cluster import EnvtestCluster, EnvtestError, build_binaries
from .fake_kubelet import FakeKubelet, KubeletThread

__all__ = [
    "EnvtestCluster",
    "EnvtestError",
    "FakeKubelet",
    "KubeletThread",
    "build_binaries",
]
