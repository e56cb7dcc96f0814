"""The Kubernetes API client, built one way for the server and the CLI."""

from __future__ import annotations

import os

from kubernetes.aio import client as kube
from kubernetes.aio import config as kube_config

from webhook.config import Config


async def api_client(config: Config, *, user_kubeconfig: bool) -> kube.ApiClient | None:
    """In a cluster, its ServiceAccount; else `kubeconfig`; with `user_kubeconfig` (the CLI)
    also $KUBECONFIG or ~/.kube/config as kubectl does. None when there is nothing to use."""
    if config.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config()
        return kube.ApiClient()
    if config.kubeconfig is None and not user_kubeconfig:
        return None
    configuration = kube.Configuration()
    path = str(config.kubeconfig) if config.kubeconfig else None
    await kube_config.load_kube_config(config_file=path, client_configuration=configuration)
    return kube.ApiClient(configuration)


async def close(api: kube.ApiClient) -> None:
    await api.close()
