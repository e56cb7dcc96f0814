"""Whether the cluster's nodes can mount image volumes: `auto` injection mode's second
question, after the apiserver's version (webhook/config.py `inject_settings`).

The apiserver keeps a pod's image volume from 1.35 (ImageVolume on by default), but a pod
runs on a node, and Kubernetes lets kubelets be up to three minors older than the apiserver:
a 1.34 kubelet has ImageVolume off, and a runtime without image volumes in its CRI
(containerd before 2.1, CRI-O before 1.31; containerd 1.7 is still the runtime of many node
images) cannot mount one. A wrapped pod landing there would never start. So image volumes are
chosen only when every node reports (``status.nodeInfo``) a kubelet of 1.35 or newer and a
runtime that has them; any other node, a runtime this module does not know included, means
copy mode for every new pod (any pod may land on any node).

Nodes are listed at start and every ``refresh`` seconds (RBAC: list nodes): a node that joins
later turns new pods to copy mode within that time; pods admitted in between keep their image
volume. With no node yet, only the apiserver's version decides. When the nodes cannot be
listed before any list succeeded (no right to list them, the API not answering at start),
nothing is known of them: copy mode, which every node runs, until a list succeeds; a list that
fails later keeps the last answer (the log says why once).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from webhook.kube import listed_items

log = logging.getLogger("podinit.nodes")

REFRESH_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 5.0
# The kubelet's ImageVolume gate: beta and off in 1.33-1.34, on by default from 1.35.
KUBELET_SINCE = (1, 35)
# The first releases whose CRI implementation mounts image volumes.
RUNTIMES_SINCE = {"containerd": (2, 1), "cri-o": (1, 31)}


def _version(text: str) -> tuple[int, int] | None:
    """``v1.34.4``, ``1.7.35``, ``2.1.0-rc.1`` -> (major, minor)."""
    match = re.match(r"v?(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


def node_mounts_image_volumes(node_info: Mapping[str, Any]) -> bool:
    """A node's kubelet has image volumes on and its runtime implements them."""
    kubelet = _version(str(node_info.get("kubeletVersion", "")))
    runtime, _, release = str(node_info.get("containerRuntimeVersion", "")).partition("://")
    since, version = RUNTIMES_SINCE.get(runtime), _version(release)
    if kubelet is None or since is None or version is None:
        return False
    return kubelet >= KUBELET_SINCE and version >= since


def nodes_mount_image_volumes(nodes: Iterable[Mapping[str, Any]]) -> bool | None:
    """Every node mounts image volumes; None when there is no node to ask."""
    infos = [(node.get("status") or {}).get("nodeInfo") or {} for node in nodes]
    if not infos:
        return None
    return all(node_mounts_image_volumes(info) for info in infos)


class NodeApi(Protocol):
    """What is used of kubernetes.aio's CoreV1Api."""

    async def list_node_without_preload_content(self, *, _request_timeout: float) -> Any: ...


class NodeCapabilities:
    """The last answer of ``nodes_mount_image_volumes`` (None: unknown), re-read in the
    background by ``run``; ``on_change`` (set by serve: it re-derives the admitter's
    settings) is called with each new answer."""

    def __init__(
        self,
        core: NodeApi,
        *,
        refresh: float = REFRESH_SECONDS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.core = core
        self.refresh = refresh
        self.request_timeout = request_timeout
        self.mount: bool | None = None
        self.nodes: list[Any] = []  # as last listed (ClusterNetworks reads their podCIDRs)
        self.on_change: Callable[[bool | None], None] = lambda _: None
        self._failing = False
        self._listed = False  # a list has succeeded

    async def read(self) -> bool | None:
        """List the nodes; a failure is logged once and keeps the previous answer, or, before
        any list succeeded, answers False (nothing is known of the nodes: copy mode)."""
        try:
            items = await listed_items(
                self.core.list_node_without_preload_content, timeout=self.request_timeout
            )
        except Exception as error:
            if not self._listed:
                self.mount = False
            if not self._failing:
                keeps = "keeps the last answer" if self._listed else "uses copy mode meanwhile"
                log.warning("cannot list nodes (%s): auto mode %s", error, keeps)
            self._failing = True
            return self.mount
        self._failing, self._listed = False, True
        self.nodes = items
        self.mount = nodes_mount_image_volumes(items)
        return self.mount

    async def run(self) -> None:
        """Re-read every ``refresh`` seconds until cancelled, telling ``on_change`` of a new
        answer."""
        while True:
            await asyncio.sleep(self.refresh)
            before = self.mount
            if await self.read() != before:
                log.info("nodes mount image volumes: %s", self.mount)
                self.on_change(self.mount)
