"""The cluster's Service and Pod ranges, denied to registry lookups (`registryDenyClusterNetworks`).

A pod's image names its registry, so a tenant chooses where the webhook connects: a registry
"at" a Service's ClusterIP or a pod's address would make podinit a client of whatever listens
there, on the tenant's behalf (docs/threat-model.md). Those ranges differ per cluster, so they
are read from the API rather than configured:

- ServiceCIDR objects (networking.k8s.io/v1; the apiserver makes `kubernetes` from its
  --service-cluster-ip-range, and an administrator may add more);
- nodes' spec.podCIDRs (listed here, or in auto mode taken from the nodes webhook/server/
  nodes.py lists anyway; set where the controller manager allocates node ranges; network
  plugins that manage their own pools leave them unset: add such a range to
  registryDeniedNetworks).

Read at start and every `refresh` seconds (RBAC: list servicecidrs and nodes). Each list that
fails keeps what it last found (logged once), so a flaky API never reopens a range.
Registries the operator named (insecureRegistries, mirrors, registryAllowedNetworks, or a peer
registryCaFile vouches for) are reached there as before.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from webhook.kube import listed_items
from webhook.server.nodes import REFRESH_SECONDS, REQUEST_TIMEOUT_SECONDS

log = logging.getLogger("podinit.clusternetworks")


class ServiceCidrApi(Protocol):
    """What is used of kubernetes.aio's NetworkingV1Api."""

    async def list_service_cidr_without_preload_content(
        self, *, _request_timeout: float
    ) -> Any: ...


class NodeApi(Protocol):
    """What is used of kubernetes.aio's CoreV1Api."""

    async def list_node_without_preload_content(self, *, _request_timeout: float) -> Any: ...


def cluster_ranges(
    service_cidrs: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]
) -> tuple[str, ...]:
    """The ranges ServiceCIDR objects and nodes name, normalised, sorted, each once; entries
    that are not networks are left out (the apiserver validates them; this is only a guard)."""
    found: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    values = [*_strings(service_cidrs, "cidrs"), *_strings(nodes, "podCIDRs")]
    for value in values:
        try:
            found.add(ipaddress.ip_network(value, strict=False))
        except ValueError:
            continue
    return tuple(str(net) for net in sorted(found, key=lambda net: (net.version, net)))


def _strings(items: Iterable[Mapping[str, Any]], field: str) -> list[str]:
    values: list[str] = []
    for item in items:
        spec = item.get("spec") if isinstance(item, Mapping) else None
        listed = spec.get(field) if isinstance(spec, Mapping) else None
        if isinstance(listed, list):
            values += [v for v in listed if isinstance(v, str)]
    return values


class ClusterNetworks:
    """The last ranges found, re-read in the background by `run`; `on_change` (set by serve:
    it updates the resolver's network policy) is called with each new answer."""

    def __init__(
        self,
        networking: ServiceCidrApi,
        core: NodeApi,
        *,
        on_change: Callable[[tuple[str, ...]], None],
        listed_nodes: Callable[[], list[Any]] | None = None,
        refresh: float = REFRESH_SECONDS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.on_change = on_change
        self.refresh = refresh
        self.ranges: tuple[str, ...] = ()

        async def nodes() -> list[Any]:  # another reader's list, when there is one: no I/O
            if listed_nodes is not None:
                return listed_nodes()
            return await listed_items(
                core.list_node_without_preload_content, timeout=request_timeout
            )

        self._lists: dict[str, Callable[[], Awaitable[list[Any]]]] = {
            "servicecidrs": lambda: listed_items(
                networking.list_service_cidr_without_preload_content, timeout=request_timeout
            ),
            "nodes": nodes,
        }
        self._items: dict[str, list[Any]] = {name: [] for name in self._lists}
        self._failing: set[str] = set()

    async def read(self) -> tuple[str, ...]:
        """List both; a list that fails keeps its previous items (logged once)."""
        for name, list_call in self._lists.items():
            try:
                self._items[name] = await list_call()
            except Exception as error:
                if name not in self._failing:
                    log.warning(
                        "cannot list %s (%s): registry lookups are denied the ranges read "
                        "before and registryDeniedNetworks",
                        name,
                        error,
                    )
                self._failing.add(name)
                continue
            self._failing.discard(name)
        ranges = cluster_ranges(self._items["servicecidrs"], self._items["nodes"])
        if ranges != self.ranges:
            log.info("registry lookups are denied the cluster's ranges: %s", ", ".join(ranges))
            self.ranges = ranges
            self.on_change(ranges)
        return ranges

    async def run(self) -> None:
        """Re-read every `refresh` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.refresh)
            await self.read()
