"""The Kubernetes API client, built one way for the server and the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
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


class JsonApi(Protocol):
    """JSON requests by method and path: what `Calls` offers, as its users name it."""

    async def call(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> tuple[int, Any]: ...


class Calls:
    """Plain JSON requests by method and path through the client's connection and auth: for
    the few calls whose generated methods would only add model round trips (evictions, dry
    runs, Events). Returns (status, parsed body or None); error statuses are returned, not
    raised."""

    def __init__(self, api: kube.ApiClient, *, timeout: float = 10.0) -> None:
        self.api = api
        self.timeout = timeout

    async def call(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        serialized = await self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query.items()) if query else None,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = await self.api.call_api(*serialized, _request_timeout=self.timeout)
        except kube.ApiException as error:
            return int(error.status or 0), _parsed(error.body)
        return int(response.status), _parsed(await response.read())


async def listed_items(list_call: Callable[..., Awaitable[Any]], *, timeout: float) -> list[Any]:
    """The items of a `list_*_without_preload_content` call of the generated client, parsed
    once as plain JSON (no model objects); an error status raises."""
    response = await list_call(_request_timeout=timeout)
    if getattr(response, "status", 200) >= 400:
        raise RuntimeError(f"HTTP {response.status}")
    items = orjson.loads(await response.read()).get("items")
    return items if isinstance(items, list) else []


def _parsed(body: Any) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
