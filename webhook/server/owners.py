"""Whether the object an Event would be about exists as the admission named it.

An AdmissionReview names the pod's owners (kind, name, uid) and its name, and whoever can
reach /mutate can write any of them. So before the Event writer refers to an object, it reads
that object: an owner must exist with the uid the pod names, a pod named without owners must
exist and be no older than its admission (it is created after admission, so the writer waits
`pod_settle` seconds first; the Event then carries the pod's uid and `kubectl describe pod`
shows it). Answers are cached for `ttl` seconds, so a ReplicaSet's thousand pods cost one read.
Reads run in the writer, never on the admission path.

A bare pod named only by generateName gets its name from the apiserver after admission: the
writer lists the namespace's pods (metadata only) for one with that generateName created since
the admission. None: it was never created, and there is no Event; one: the Event is about it;
several (a burst of them failing alike): about the namespace, as the admission named it.

What cannot be read is `Unverifiable` (the kind is not served, the read is forbidden, the API
did not answer): the writer then refers to the namespace instead, which the admission's
namespace check has shown to exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from kubernetes.aio import client as kube

TTL_SECONDS = 60.0
POD_SETTLE_SECONDS = 2.0
POD_GIVE_UP = 15.0  # seconds after its admission a pod not found counts as never created
# A pod's creationTimestamp has whole seconds; admission and storage are milliseconds apart.
CLOCK_SLACK = timedelta(seconds=2)
REQUEST_TIMEOUT_SECONDS = 5.0
PODS_PAGE = 500  # pods listed at most to find one by generateName
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class Unverifiable(Exception):
    """The object could not be read (not whether it exists)."""


@dataclass(frozen=True, slots=True)
class Found:
    uid: str
    created: datetime | None
    name: str = ""


class ObjectReads(Protocol):
    """One object's uid and creation time by apiVersion, kind, namespace and name; None when it
    does not exist; Unverifiable when that cannot be told."""

    async def read(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Found | None: ...

    async def generated(self, namespace: str, generate_name: str) -> list[Found]:
        """The namespace's pods with this generateName."""
        ...


class KubeObjects:
    """ObjectReads through the Kubernetes API: discovery maps a kind to its resource (cached
    per apiVersion), then one GET of the object."""

    def __init__(self, api: kube.ApiClient, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.core = kube.CoreV1Api(api)
        self.custom = kube.CustomObjectsApi(api)
        self.timeout = timeout
        self._resources: dict[str, dict[str, str]] = {}  # apiVersion -> kind -> resource

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> Found | None:
        group, _, version = api_version.rpartition("/")
        try:
            resource = (await self._kinds(group, version)).get(kind)
        except Exception as error:
            if getattr(error, "status", None) == 404:  # no such group or version
                return None
            raise Unverifiable(type(error).__name__) from error
        if resource is None:
            raise Unverifiable(f"{api_version} serves no namespaced {kind}")
        timeout = self.timeout
        if group:
            call = self.custom.get_namespaced_custom_object_without_preload_content(
                group, version, namespace, resource, name, _request_timeout=timeout
            )
        elif kind == "Pod":
            call = self.core.read_namespaced_pod_without_preload_content(
                name, namespace, _request_timeout=timeout
            )
        elif kind == "ReplicationController":
            read_rc = self.core.read_namespaced_replication_controller_without_preload_content
            call = read_rc(name, namespace, _request_timeout=timeout)
        else:  # no core kind but these two owns pods
            raise Unverifiable(f"v1 {kind} is not read")
        body = await _answer(call)
        return None if body is None else _found(body.get("metadata") or {})

    async def generated(self, namespace: str, generate_name: str) -> list[Found]:
        """One page of the namespace's pods, metadata only; a namespace with more pods than a
        page is Unverifiable rather than read further on the Event writer's time."""
        body = await _answer(
            self.core.list_namespaced_pod_without_preload_content(
                namespace,
                limit=PODS_PAGE,
                _headers={"Accept": f"{METADATA_LIST},application/json"},
                _request_timeout=self.timeout,
            )
        )
        if body is None:
            return []
        if (body.get("metadata") or {}).get("continue"):
            raise Unverifiable(f"more than {PODS_PAGE} pods")
        return [
            _found(item.get("metadata") or {})
            for item in body.get("items") or []
            if (item.get("metadata") or {}).get("generateName") == generate_name
        ]

    async def _kinds(self, group: str, version: str) -> dict[str, str]:
        api_version = f"{group}/{version}" if group else version
        known = self._resources.get(api_version)
        if known is None:
            if group:
                listed = await self.custom.get_api_resources(group, version)
            else:
                listed = await self.core.get_api_resources()
            known = {
                r.kind: r.name for r in listed.resources or [] if r.namespaced and "/" not in r.name
            }
            self._resources[api_version] = known
        return known


async def _answer(call: Awaitable[Any]) -> dict[str, Any] | None:
    """The JSON body a call without preload content answers (such calls return error answers
    instead of raising them); None for 404; Unverifiable for any other failure."""
    try:
        response = await call
        status = getattr(response, "status", 200)
        if status == 404:
            return None
        if status >= 400:
            raise Unverifiable(f"HTTP {status}")
        body: dict[str, Any] = orjson.loads(await response.read())
    except Unverifiable:
        raise
    except Exception as error:
        if getattr(error, "status", None) == 404:
            return None
        raise Unverifiable(type(error).__name__) from error
    return body


def _found(metadata: dict[str, Any]) -> Found:
    created = metadata.get("creationTimestamp")
    when = datetime.fromisoformat(created) if isinstance(created, str) else None
    return Found(str(metadata.get("uid", "")), when, str(metadata.get("name", "")))


Verdict = Found | None | Unverifiable


class OwnerCheck:
    """Cached answers of `reads` (for `ttl` seconds, absences and failures too)."""

    def __init__(
        self,
        reads: ObjectReads,
        *,
        ttl: float = TTL_SECONDS,
        pod_settle: float = POD_SETTLE_SECONDS,
        pod_give_up: float = POD_GIVE_UP,
        max_entries: int = 10_000,
    ) -> None:
        self.reads = reads
        self.ttl = ttl
        self.pod_settle = pod_settle
        self.pod_give_up = pod_give_up
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str, str, str], tuple[float, Verdict]] = {}

    async def uid(
        self, reference: dict[str, str] | Any, *, admitted: datetime, admitted_at: float
    ) -> str | None:
        """The uid the Event may carry for `reference` (an ObjectReference), noticed at
        `admitted` (wall clock) / `admitted_at` (monotonic): the owner's uid when it matches,
        a pod's uid when the pod was created by that admission; None when the object is not
        as named. Raises Unverifiable."""
        kind = reference["kind"]
        if kind == "Pod":  # created after its admission: give the apiserver time to store it
            await asyncio.sleep(max(0.0, admitted_at + self.pod_settle - time.monotonic()))
        key = (reference["apiVersion"], kind, reference["namespace"], reference["name"])
        verdict = await self._verdict(key, fresh=kind == "Pod")
        # A busy apiserver may store the pod seconds after admitting it: ask again for a while
        # before calling it never created.
        while (
            kind == "Pod" and verdict is None and time.monotonic() < admitted_at + self.pod_give_up
        ):
            await asyncio.sleep(1.0)
            verdict = await self._verdict(key, fresh=True)
        if isinstance(verdict, Unverifiable):
            raise verdict
        if verdict is None:
            return None
        if kind == "Pod":
            created = verdict.created
            recent = created is not None and created >= admitted - CLOCK_SLACK
            return verdict.uid if recent else None
        return verdict.uid if verdict.uid == reference.get("uid") else None

    async def created_pods(
        self, namespace: str, generate_name: str, *, admitted: datetime, admitted_at: float
    ) -> list[Found]:
        """The pods with this generateName created since `admitted`, asked again until one
        shows or `pod_give_up` seconds have passed since the admission (a busy apiserver may
        store it seconds later); none: never created. Raises Unverifiable. Not cached: each
        admission's pods are its own."""
        await asyncio.sleep(max(0.0, admitted_at + self.pod_settle - time.monotonic()))
        while True:
            found = [
                pod
                for pod in await self.reads.generated(namespace, generate_name)
                if pod.created is not None and pod.created >= admitted - CLOCK_SLACK
            ]
            if found or time.monotonic() >= admitted_at + self.pod_give_up:
                return found
            await asyncio.sleep(1.0)

    async def _verdict(self, key: tuple[str, str, str, str], *, fresh: bool) -> Verdict:
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and not (fresh and hit[1] is None):
            return hit[1]
        verdict: Verdict
        try:
            verdict = await self.reads.read(*key)
        except Unverifiable as error:
            verdict = error
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, verdict)
        return verdict
