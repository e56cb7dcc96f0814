"""A real one-node Kubernetes cluster on this machine: the control plane of
:mod:`e2e.controlplane` plus kube-scheduler, containerd, kubelet, kube-proxy, a CNI bridge
network, a small cluster DNS and a TLS registry holding the images built from the
Dockerfile. ``make cluster`` / ``make cluster-down`` run it in the background
(:mod:`e2e.node.__main__`); tests start it in process (:class:`e2e.node.cluster.Cluster`).

Everything stays on this machine: pods live on a bridge with no default route, the
bridge forwards only to itself, and services resolve to addresses on it.
"""
