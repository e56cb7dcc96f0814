#!/usr/bin/env python3
"""The pod watch's memory and time on many pods (issue 20 D1), against a real apiserver.

N pods (default 100,000) are created in one namespace of a real control plane (etcd,
kube-apiserver; pods stay Pending: no node): 99 % as podinit's webhook leaves them (wrapped, a
status annotation: the core's own patch applied), 1 % slipped (no status). Then, in this
process, the server's pod watch lists them (webhook/server/podwatch.py into
webhook/server/unwrapped.py, every namespace selected) and the memory it keeps is measured
with tracemalloc once it has synced. The baseline, measured in the same run from the same
list: what a cache of every pod's metadata keeps (an informer's store, metadata only).

    bench/podwatch/bench_podwatch.py [--pods N] [--write-doc docs/performance.md]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import ssl
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.docsection import replace_section  # noqa: E402
from e2e.controlplane import ControlPlane  # noqa: E402
from e2e.tools import find_tools  # noqa: E402
from webhook.core import InjectSettings, mutate  # noqa: E402
from webhook.kube import Calls  # noqa: E402
from webhook.server.podwatch import PodWatch  # noqa: E402
from webhook.server.unwrapped import UnwrappedPods  # noqa: E402

NAMESPACE = "bench"
SETTINGS = InjectSettings()
CONCURRENCY = 24


def pod(index: int, *, wrapped: bool) -> dict[str, Any]:
    name = f"p{index:06d}"
    original = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name[:4]}},
        "spec": {
            "containers": [
                {"name": "app", "image": "example/app:1", "command": ["sh", "-c", "app"]}
            ]
        },
    }
    if not wrapped:
        return original
    patched: dict[str, Any] = jsonpatch.apply_patch(
        copy.deepcopy(original), mutate(original, SETTINGS, {}).patch
    )
    return patched


async def create_pods(cp: ControlPlane, count: int, slipped_every: int) -> float:
    """Seconds to create them all."""
    context = cp.ssl_context()
    started = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    async with httpx.AsyncClient(base_url=cp.apiserver_url, verify=context, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                body = pod(index, wrapped=index % slipped_every != 0)
                response = await client.post(
                    f"/api/v1/namespaces/{NAMESPACE}/pods",
                    content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code >= 300:
                    raise RuntimeError(f"create {index}: {response.status_code} {response.text}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.monotonic() - started


async def watched(cp: ControlPlane) -> tuple[int, float, int, int]:
    """(bytes kept after sync, seconds to sync, unwrapped pods found, specs read)."""
    from kubernetes.aio import client as kube
    from kubernetes.aio import config as kube_config

    configuration = kube.Configuration()
    await kube_config.load_kube_config(str(cp.kubeconfig), client_configuration=configuration)
    api = kube.ApiClient(configuration)
    calls = Calls(api)

    async def read_pod(namespace: str, name: str) -> dict[str, Any] | None:
        status, body = await calls.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return body if status < 300 else None

    async def sync() -> tuple[UnwrappedPods, float]:
        pods = UnwrappedPods(
            settings=lambda: SETTINGS, sends=lambda ns, labels: True, read_pod=read_pod
        )
        watch = PodWatch(
            kube.CoreV1Api(api), changed=pods.changed, deleted=pods.deleted, relisted=pods.relisted
        )
        started = time.monotonic()
        task = asyncio.ensure_future(watch.run())
        await watch.synced.wait()
        took = time.monotonic() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return pods, took

    await sync()  # the first sync imports the client's models: a one-time cost, not measured
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pods, took = await sync()
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await api.close()
    return kept, took, len(pods.pods), pods.reads


def metadata_cache(cp: ControlPlane) -> int:
    """Bytes a store of every pod's metadata keeps (the baseline), from the same list."""
    context = cp.ssl_context()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store: dict[str, Any] = {}
    token = ""
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    with httpx.Client(base_url=cp.apiserver_url, verify=context, timeout=60) as client:
        while True:
            params = {"limit": "500", **({"continue": token} if token else {})}
            page = client.get("/api/v1/pods", params=params, headers={"Accept": accept}).json()
            for item in page["items"]:
                store[item["metadata"]["uid"]] = item["metadata"]
            token = page["metadata"].get("continue") or ""
            if not token:
                break
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del store
    return kept


def markdown(
    n: int, created: float, kept: int, took: float, found: int, reads: int, base: int
) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"""## Pod watch

`make bench-podwatch` (`bench/podwatch/bench_podwatch.py`), {when}: {n:,} pods in a real
apiserver (created in {created:.0f} s; 99 % as the webhook leaves them, 1 % slipped), listed by the
server's pod watch (metadata pages of 500, a spec read only for pods whose metadata may be
unwrapped) until synced, memory measured with tracemalloc after a collection.

| what | pod watch | baseline: a metadata cache of every pod |
| --- | --- | --- |
| memory kept after the list | {kept / 1e6:.1f} MB ({kept / n:.0f} B per pod in the cluster, {kept / max(found, 1):.0f} B per unwrapped pod) | {base / 1e6:.1f} MB ({base / n:.0f} B per pod) |
| ratio | {kept / base:.3f}x the baseline | 1 |
| time to sync | {took:.1f} s ({n / took:,.0f} pods/s) | |
| specs read | {reads:,} (the slipped pods: {found:,} kept) | |

What is kept grows with the unwrapped pods, not with the cluster: a pod that needed no look
costs nothing after its event is handled.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--write-doc", type=Path)
    args = parser.parse_args()
    with ControlPlane.running(find_tools()) as cp:
        cp.kubectl("create", "namespace", NAMESPACE)
        cp.wait_for(
            "the default ServiceAccount",
            lambda: (
                cp.kubectl("get", "sa", "default", "-n", NAMESPACE, check=False).returncode == 0
            ),
        )
        created = asyncio.run(create_pods(cp, args.pods, slipped_every=100))
        kept, took, found, reads = asyncio.run(watched(cp))
        base = metadata_cache(cp)
    section = markdown(args.pods, created, kept, took, found, reads, base)
    print(section)
    if args.write_doc:
        replace_section(args.write_doc, "Pod watch", section)


if __name__ == "__main__":
    ssl.create_default_context()  # fail early if the ssl module is broken
    main()
