"""The Kubernetes API client, built one way for the server and the CLI."""

from __future__ import annotations

import os

from kubernetes.aio import client as kube
from kubernetes.aio import config as kube_config

from webhook.config import Config


async def api_client(config: Config, *, user_kubeconfig: bool) -> kube.ApiClient | None:
    """`kubeconfig` when set; with `user_kubeconfig` (the CLI) then $KUBECONFIG or
    ~/.kube/config as kubectl does; then, in a cluster, its ServiceAccount. None when there is
    nothing to use."""
    if config.kubeconfig is None and user_kubeconfig and _user_kubeconfig_exists():
        configuration = kube.Configuration()
        await kube_config.load_kube_config(client_configuration=configuration)
        return kube.ApiClient(configuration)
    if config.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config()
        return kube.ApiClient()
    if config.kubeconfig is None and not user_kubeconfig:
        return None
    configuration = kube.Configuration()
    path = str(config.kubeconfig) if config.kubeconfig else None
    await kube_config.load_kube_config(config_file=path, client_configuration=configuration)
    return kube.ApiClient(configuration)


def _user_kubeconfig_exists() -> bool:
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep)
    return any(p and os.path.exists(p) for p in paths) or os.path.exists(
        os.path.expanduser("~/.kube/config")
    )


async def close(api: kube.ApiClient) -> None:
    await api.close()
