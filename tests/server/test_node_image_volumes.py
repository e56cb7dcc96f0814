"""`auto` mode asks the nodes too (webhook/server/nodes.py): image volumes only when every
node's kubelet (1.35+: ImageVolume on by default) and runtime (containerd 2.1+, CRI-O 1.31+)
can mount them. The node infos are what real kubelets report in `status.nodeInfo`."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from webhook.config import Config
from webhook.core.settings import InjectionMode
from webhook.server.nodes import NodeCapabilities, node_mounts_image_volumes

NEW = {"kubeletVersion": "v1.37.2", "containerRuntimeVersion": "containerd://v2.4.2"}
OLD_KUBELET = {"kubeletVersion": "v1.34.4", "containerRuntimeVersion": "containerd://v2.4.2"}
OLD_RUNTIME = {"kubeletVersion": "v1.37.2", "containerRuntimeVersion": "containerd://1.7.35"}


@pytest.mark.parametrize(
    ("info", "mounts"),
    [
        (NEW, True),
        (OLD_KUBELET, False),  # ImageVolume is off by default in kubelet 1.34
        (OLD_RUNTIME, False),  # containerd 1.7 has no image volumes
        ({"kubeletVersion": "v1.35.4", "containerRuntimeVersion": "containerd://2.1.0"}, True),
        ({"kubeletVersion": "v1.35.4", "containerRuntimeVersion": "containerd://2.0.6"}, False),
        ({"kubeletVersion": "v1.36.3", "containerRuntimeVersion": "cri-o://1.31.0"}, True),
        ({"kubeletVersion": "v1.36.3", "containerRuntimeVersion": "cri-o://1.30.4"}, False),
        ({"kubeletVersion": "v1.37.2", "containerRuntimeVersion": "docker://28.1.1"}, False),
        ({}, False),
    ],
)
def test_a_node_mounts_image_volumes_only_with_a_new_enough_kubelet_and_runtime(
    info: dict[str, str], mounts: bool
) -> None:
    assert node_mounts_image_volumes(info) is mounts


class Nodes:
    """A CoreV1Api answering list_node with these node infos (or an HTTP status)."""

    def __init__(self, *infos: dict[str, str], status: int = 200) -> None:
        self.infos, self.status = list(infos), status

    async def list_node_without_preload_content(self, *, _request_timeout: float) -> Any:
        body = orjson.dumps({"items": [{"status": {"nodeInfo": i}} for i in self.infos]})
        status = self.status

        class Response:
            def __init__(self) -> None:
                self.status = status

            async def read(self) -> bytes:
                return body

        return Response()


def mode(mounts: bool | None, minor: int = 37) -> InjectionMode:
    config = Config(injection_mode="auto")
    settings = config.inject_settings(kubernetes_version=(1, minor), nodes_mount=mounts)
    return settings.injection_mode


def test_auto_picks_copy_mode_as_soon_as_one_node_cannot_mount_image_volumes() -> None:
    async def main() -> list[bool | None]:
        nodes = Nodes(NEW)
        capabilities = NodeCapabilities(nodes, refresh=0)
        seen = [await capabilities.read()]
        nodes.infos.append(OLD_RUNTIME)  # a containerd 1.7 node joins
        seen.append(await capabilities.read())
        nodes.infos = []
        seen.append(await capabilities.read())
        nodes.status = 403  # RBAC without list nodes: the last answer stands
        nodes.infos = [NEW]
        seen.append(await capabilities.read())
        return seen

    assert asyncio.run(main()) == [True, False, None, None]
    assert mode(True) == InjectionMode.IMAGE_VOLUME
    assert mode(False) == InjectionMode.COPY
    assert mode(None) == InjectionMode.IMAGE_VOLUME  # no node to ask: the apiserver decides
    assert mode(True, minor=34) == InjectionMode.COPY  # the apiserver drops image volumes


def test_a_node_joining_later_is_told_to_the_server_by_the_refresh() -> None:
    async def main() -> list[bool | None]:
        nodes = Nodes(NEW)
        capabilities = NodeCapabilities(nodes, refresh=0.01)
        await capabilities.read()
        changes: list[bool | None] = []
        capabilities.on_change = changes.append
        task = asyncio.ensure_future(capabilities.run())
        await asyncio.sleep(0.05)
        nodes.infos.append(OLD_KUBELET)
        for _ in range(100):
            if changes:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        return changes

    assert asyncio.run(main()) == [False]


def test_nodes_that_cannot_be_listed_from_the_start_mean_copy_mode_until_a_list_succeeds() -> None:
    """No right to list nodes (or no answer at start): nothing is known of the nodes, and a
    pod with an image volume would never start on one that cannot mount it."""

    async def main() -> list[bool | None]:
        nodes = Nodes(NEW, status=403)
        capabilities = NodeCapabilities(nodes, refresh=0)
        seen = [await capabilities.read()]
        nodes.status = 200
        seen.append(await capabilities.read())
        return seen

    assert asyncio.run(main()) == [False, True]
    assert mode(False) == InjectionMode.COPY
