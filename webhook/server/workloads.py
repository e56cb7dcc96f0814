"""A workload as the reconciler needs to see it before it takes a pod, and after: read from the
apiserver each time (nothing remembered, so a replica that starts leading mid-way sees what
the one before it left).

A workload is *steady* when its controller has caught up with its spec, every pod it wants is
available (Ready for `minReadySeconds`, as the controller counts them), none of its pods is
terminating, and no rollout is under way (a Deployment's, read from its ReplicaSet's owner; a
StatefulSet's current and update revisions differ, also while a partition or OnDelete holds
pods back, whose next pod would be of the new revision; a DaemonSet's pods not all updated):
only then may a pod be taken. Terminating pods matter because the controllers count a pod that is
being deleted but still Ready as ready (a StatefulSet does), and slipped pods are exactly the
ones that sit out their whole grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webhook.core import UNWRAPPED, InjectSettings
from webhook.core.annotations import STATUS
from webhook.core.selection import label_selector
from webhook.kube import JsonApi
from webhook.server.unwrapped import Owner, controller, observed

log = logging.getLogger("podinit.reconcile")

# The controllers whose pods come back when evicted, by (apiVersion, kind): their path.
REPLACEABLE = {
    ("apps/v1", "ReplicaSet"): "/apis/apps/v1/namespaces/{}/replicasets/{}",
    ("apps/v1", "StatefulSet"): "/apis/apps/v1/namespaces/{}/statefulsets/{}",
    ("apps/v1", "DaemonSet"): "/apis/apps/v1/namespaces/{}/daemonsets/{}",
    ("v1", "ReplicationController"): "/api/v1/namespaces/{}/replicationcontrollers/{}",
}


def replaceable(owner: Owner | None) -> bool:
    return owner is not None and (owner.api_version, owner.kind) in REPLACEABLE


@dataclass(frozen=True, slots=True)
class PodState:
    uid: str
    ready: bool
    terminating: bool
    settled: bool  # the webhook decided it (a status) and nothing of it is unwrapped


@dataclass(frozen=True, slots=True)
class Workload:
    wanted: int  # pods its controller keeps
    steady: bool
    pods: tuple[PodState, ...]  # the pods it controls, terminating ones included


class Workloads:
    def __init__(self, *, api: JsonApi, settings: Callable[[], InjectSettings]) -> None:
        self.api, self.settings = api, settings
        self._forbidden: set[str] = set()  # resources a 403 was logged for (once each)

    async def read(self, owner: Owner, namespace: str) -> Workload | None:
        """None when the owner is gone, is another object now, or cannot be read."""
        path = REPLACEABLE.get((owner.api_version, owner.kind))
        if path is None:
            return None
        found = await self._get(path.format(namespace, owner.name), owner.uid)
        if found is None:
            return None
        spec, status = found.get("spec") or {}, found.get("status") or {}
        if owner.kind == "DaemonSet":
            wanted, available = status.get("desiredNumberScheduled"), status.get("numberAvailable")
        else:
            wanted, available = spec.get("replicas", 1), status.get("availableReplicas")
        if not isinstance(wanted, int):
            return None
        pods = await self._pods(owner, namespace, spec.get("selector"))
        if pods is None:
            return None
        live = [p for p in pods if not p.terminating]
        steady = (
            _caught_up(found)
            and (available or 0) >= wanted
            and len(live) >= wanted
            and all(p.ready for p in live)
            and not any(p.terminating for p in pods)
            and _own_rollout_done(owner.kind, status, wanted)
            and await self._deployment_rollout_done(found, namespace)
        )
        return Workload(wanted=wanted, steady=steady, pods=tuple(pods))

    async def _pods(self, owner: Owner, namespace: str, selector: object) -> list[PodState] | None:
        if owner.kind == "ReplicationController":  # a plain map of labels
            selector = {"matchLabels": selector or {}}
        query = label_selector(selector)
        if not query:
            return None  # every pod of the namespace: not a selector to trust
        path = f"/api/v1/namespaces/{namespace}/pods"
        status, listed = await self.api.call("GET", path, query={"labelSelector": query})
        if status >= 300 or not isinstance(listed, dict):
            return None
        states = []
        for pod in listed.get("items") or []:
            metadata = pod.get("metadata") or {}
            mine = controller(metadata)
            if mine is None or mine.uid != owner.uid:
                continue
            states.append(
                PodState(
                    uid=str(metadata.get("uid", "")),
                    ready=_ready(pod),
                    terminating=metadata.get("deletionTimestamp") is not None,
                    settled=settled(pod, self.settings()),
                )
            )
        return states

    async def _deployment_rollout_done(self, replica_set: dict[str, Any], namespace: str) -> bool:
        """For a Deployment's ReplicaSet: the Deployment has every pod updated and available
        and no old one left. True for any other owner."""
        owner = controller(replica_set.get("metadata") or {})
        if owner is None or (owner.api_version, owner.kind) != ("apps/v1", "Deployment"):
            return True
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{owner.name}"
        deployment = await self._get(path, owner.uid)
        if deployment is None:
            return False
        wanted = (deployment.get("spec") or {}).get("replicas", 1)
        status = deployment.get("status") or {}
        return (
            _caught_up(deployment)
            and status.get("updatedReplicas") == wanted
            and status.get("replicas") == wanted
            and (status.get("availableReplicas") or 0) >= wanted
        )

    async def _get(self, path: str, uid: str) -> dict[str, Any] | None:
        status, found = await self.api.call("GET", path)
        resource = path.rsplit("/", 2)[-2]  # .../<resource>/<name>
        if status == 403 and resource not in self._forbidden:
            self._forbidden.add(resource)
            log.error("reading %s is forbidden: no pod of such workloads is replaced", path)
        if status >= 300 or not isinstance(found, dict):
            return None
        if (found.get("metadata") or {}).get("uid") != uid:
            return None
        return found


def settled(pod: Any, settings: InjectSettings) -> bool:
    """The webhook decided about the pod (its status) and left nothing unwrapped that it
    should have wrapped."""
    annotations = (
        ((pod.get("metadata") or {}).get("annotations") or {}) if isinstance(pod, dict) else {}
    )
    seen = observed(pod, settings) if STATUS in annotations else None
    return seen is not None and not any(o.state in UNWRAPPED for o in seen)


def _own_rollout_done(kind: str, status: dict[str, Any], wanted: int) -> bool:
    if kind == "StatefulSet":
        return status.get("currentRevision") == status.get("updateRevision")
    if kind == "DaemonSet":
        return status.get("updatedNumberScheduled") == wanted
    return True


def _caught_up(found: dict[str, Any]) -> bool:
    """Its controller has seen its latest spec."""
    generation = (found.get("metadata") or {}).get("generation")
    return generation == (found.get("status") or {}).get("observedGeneration")


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
