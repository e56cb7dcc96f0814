"""Pods' metadata, cluster-wide: a list, then a watch from where it ended, again and again.

Only metadata is asked for (`as=PartialObjectMetadata`): names, labels, annotations, owners,
timestamps. Pod specs carry environment values users consider secret, and whether a pod can
be unwrapped shows in its metadata first (webhook/server/unwrapped.py reads the spec of the few
that can). The list is read in pages; the watch asks for bookmarks, so a quiet cluster does not
make the next watch start from a version the apiserver has forgotten. When it has (410 Gone),
or the connection breaks, the list is read again: `relisted` then names every pod that exists,
and the consumer forgets the rest. One event line is capped (`MAX_LINE`): an object larger than
any the apiserver stores is an error, not a memory spike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from kubernetes.aio import client as kube

log = logging.getLogger("podinit.podwatch")

PAGE = 500
WATCH_SECONDS = 300  # the apiserver ends each watch after this; the next starts where it ended
MAX_LINE = 8 * 1024 * 1024  # annotations are capped at 256 KiB; managedFields add some
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

Metadata = dict[str, Any]


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class PodWatch:
    def __init__(
        self,
        core: kube.CoreV1Api,
        *,
        changed: Callable[[Metadata], Awaitable[None]],
        deleted: Callable[[Metadata], None],
        relisted: Callable[[set[str]], None],
        page: int = PAGE,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.core = core
        self.changed, self.deleted, self.relisted = changed, deleted, relisted
        self.page, self.watch_seconds = page, watch_seconds
        self.synced = asyncio.Event()  # set after the first whole list

    async def run(self) -> None:
        """List and watch until cancelled; errors are logged and retried with backoff."""
        failures = 0
        while True:
            try:
                version = await self._list()
                failures = 0
                while True:
                    version = await self._watch(version)
            except Gone:
                log.info("pod watch expired; listing again")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("pod watch failed (%s); again in %.0fs", _describe(error), delay)
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        uids, version = await self._pages(None)
        self.relisted(uids)
        self.synced.set()
        return version

    async def list_all(self) -> None:
        """Every pod's metadata again, as changed; the running watch goes on (and reports
        what is deleted meanwhile)."""
        await self._pages(None)

    async def list_namespace(self, namespace: str) -> None:
        """The pods of one namespace, as changed (one the webhook has just started to select)."""
        await self._pages(namespace)

    async def _pages(self, namespace: str | None) -> tuple[set[str], str]:
        """Every pod's metadata, page by page, to `changed`: their uids and the list's
        resourceVersion."""
        uids: set[str] = set()
        token: str | None = None
        headers = {"Accept": f"{_METADATA_LIST},application/json"}
        while True:
            if namespace is None:
                response = await self.core.list_pod_for_all_namespaces_without_preload_content(
                    limit=self.page, _continue=token, _headers=headers, _request_timeout=60
                )
            else:
                response = await self.core.list_namespaced_pod_without_preload_content(
                    namespace,
                    limit=self.page,
                    _continue=token,
                    _headers=headers,
                    _request_timeout=60,
                )
            page = _checked(response.status, await response.read())
            for item in page.get("items") or []:
                metadata = item.get("metadata") or {}
                uids.add(metadata.get("uid", ""))
                await self.changed(metadata)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return uids, str(meta.get("resourceVersion", ""))

    async def _watch(self, version: str) -> str:
        """One watch from `version`; the version to go on from when it ends."""
        response = await self.core.list_pod_for_all_namespaces_without_preload_content(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _headers={"Accept": f"{_METADATA},application/json"},
            _request_timeout=self.watch_seconds + 30,
        )
        try:
            if response.status >= 400:
                _checked(response.status, await response.read())
            async for line in _lines(response.content):
                event = orjson.loads(line)
                kind, item = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if item.get("code") == 410:
                        raise Gone
                    raise RuntimeError(f"watch error: {item.get('message', item)}")
                metadata = item.get("metadata") or {}
                version = str(metadata.get("resourceVersion") or version)
                if kind == "DELETED":
                    self.deleted(metadata)
                elif kind in ("ADDED", "MODIFIED"):
                    await self.changed(metadata)
        finally:
            response.release()
        return version


async def _lines(content: Any) -> AsyncIterator[bytes]:
    """Newline-separated events, each at most MAX_LINE bytes."""
    pending = bytearray()
    async for chunk in content.iter_any():
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end])
            del pending[: end + 1]
            if line.strip():
                yield line
        if len(pending) > MAX_LINE:
            raise RuntimeError(f"a watch event exceeds {MAX_LINE} bytes")
    if pending.strip():
        yield bytes(pending)


def _checked(status: int, body: bytes) -> dict[str, Any]:
    """A list answer's JSON; an error answer raised (410: Gone)."""
    if status == 410:
        raise Gone
    if status >= 400:
        raise RuntimeError(f"listing pods: HTTP {status}")
    parsed: dict[str, Any] = orjson.loads(body)
    return parsed


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__
