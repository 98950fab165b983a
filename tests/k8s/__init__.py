"""Tests against a real kube-apiserver + etcd with a fake kubelet (see README.md)."""
