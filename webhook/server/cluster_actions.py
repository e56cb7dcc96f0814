"""What the reconciler asks of the apiserver: evict a pod, prove the webhook is reached, find a
workload's replacement pod, and leave an Event on the object acted on. Policy (which pod, when,
how many) lives in webhook/server/reconcile.py; this module only talks to the API.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from webhook.core import InjectSettings, State, observe, prepare
from webhook.core.selection import label_selector
from webhook.server.events import ObjectReference, clean
from webhook.server.unwrapped import Owner, UnwrappedPod, controller

log = logging.getLogger("podinit.reconcile")

REQUEST_TIMEOUT_SECONDS = 10.0
REPORTING_CONTROLLER = "podinit.dev/reconciler"
PROBE_POD = "podinit-serving-probe"
NOTE_LIMIT = 1024


class Api(Protocol):
    """What is used of kubernetes.aio's CoreV1Api, AppsV1Api and EventsV1Api, by name."""

    async def call(
        self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None
    ) -> tuple[int, Any]: ...


class Eviction(enum.Enum):
    EVICTED = "evicted"
    REFUSED = "refused"  # 429: a PodDisruptionBudget does not allow it now
    GONE = "gone"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Availability:
    wanted: int  # pods the workload's controller keeps
    all_ready: bool


@dataclass(frozen=True, slots=True)
class Replacement:
    ready: bool
    wrapped: bool


class ClusterActions:
    def __init__(self, *, api: Api, settings: InjectSettings, identity: str) -> None:
        self.api, self.settings, self.identity = api, settings, identity

    async def evict(self, pod: UnwrappedPod) -> Eviction:
        """Through the Eviction API, so that PodDisruptionBudgets hold; the pod's uid is a
        precondition (a pod re-created under the same name is not this one)."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "deleteOptions": {"preconditions": {"uid": pod.uid}},
        }
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/eviction"
        status, answer = await self.api.call("POST", path, body)
        if status < 300:
            return Eviction.EVICTED
        if status == 429:
            return Eviction.REFUSED
        if status in (404, 409):  # gone, or its uid changed
            return Eviction.GONE
        log.warning("evicting %s/%s: HTTP %s %s", pod.namespace, pod.name, status, _message(answer))
        return Eviction.FAILED

    async def webhook_reached(self, namespace: str) -> bool:
        """A dry-run pod create in `namespace` (a namespace the webhook selects) comes back
        wrapped: the apiserver calls the webhook and a replica answers."""
        probe = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROBE_POD, "namespace": namespace},
            "spec": {
                "containers": [
                    {
                        "name": "probe",
                        "image": self.settings.init_image,
                        # never run (a dry run); any argv the webhook wraps
                        "command": ["/serving-probe"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                    }
                ],
            },
        }
        path = f"/api/v1/namespaces/{namespace}/pods"
        status, answer = await self.api.call("POST", path, probe, query={"dryRun": "All"})
        if status >= 300:
            log.warning("serving probe in %s: HTTP %s %s", namespace, status, _message(answer))
            return False
        return _wrapped(answer, self.settings)

    async def replacement(self, owner: Owner, namespace: str, after: float) -> Replacement | None:
        """The newest pod of `owner` created at or after `after` (seconds since the epoch,
        whole seconds as the API stores them), if any: Ready, and wrapped?"""
        selector = await self._selector(owner, namespace)
        if selector is None:
            return None
        path = f"/api/v1/namespaces/{namespace}/pods"
        status, listed = await self.api.call("GET", path, query={"labelSelector": selector})
        if status >= 300:
            return None
        newest: dict[str, Any] | None = None
        for pod in listed.get("items") or []:
            metadata = pod.get("metadata") or {}
            mine = controller(metadata)
            if mine is None or mine.uid != owner.uid or metadata.get("deletionTimestamp"):
                continue
            created = _seconds(metadata.get("creationTimestamp"))
            if created >= int(after) and (newest is None or created >= _created(newest)):
                newest = pod
        if newest is None:
            return None
        return Replacement(ready=_ready(newest), wrapped=_wrapped(newest, self.settings))

    async def available(self, owner: Owner, namespace: str) -> Availability:
        """How many pods the workload wants, and whether every one is Ready as its controller
        counts them: only then may one be taken. Asked of the cluster, not remembered, so a
        replica that starts leading mid-replacement waits for the replacement as the one
        before it did."""
        found = await self._owner(owner, namespace)
        if found is None:
            return Availability(wanted=0, all_ready=False)
        spec, status = found.get("spec") or {}, found.get("status") or {}
        if owner.kind == "DaemonSet":
            wanted, ready = status.get("desiredNumberScheduled"), status.get("numberReady")
        else:
            wanted, ready = spec.get("replicas", 1), status.get("readyReplicas")
        if not isinstance(wanted, int):
            return Availability(wanted=0, all_ready=False)
        # a controller that has not caught up with a change yet counts the old spec
        caught_up = found["metadata"].get("generation") == status.get("observedGeneration")
        return Availability(wanted=wanted, all_ready=caught_up and (ready or 0) >= wanted)

    async def _owner(self, owner: Owner, namespace: str) -> dict[str, Any] | None:
        """The owner as stored, if it is still the one the pod names."""
        resource = {
            "ReplicaSet": "apis/apps/v1/namespaces/{}/replicasets",
            "StatefulSet": "apis/apps/v1/namespaces/{}/statefulsets",
            "DaemonSet": "apis/apps/v1/namespaces/{}/daemonsets",
            "ReplicationController": "api/v1/namespaces/{}/replicationcontrollers",
        }.get(owner.kind)
        if resource is None:
            return None
        status, found = await self.api.call("GET", f"/{resource.format(namespace)}/{owner.name}")
        if status >= 300 or not isinstance(found, dict):
            return None
        if (found.get("metadata") or {}).get("uid") != owner.uid:
            return None
        return found

    async def _selector(self, owner: Owner, namespace: str) -> str | None:
        found = await self._owner(owner, namespace)
        if found is None:
            return None
        selector = (found.get("spec") or {}).get("selector")
        if owner.kind == "ReplicationController":  # a plain map of labels
            selector = {"matchLabels": selector or {}}
        return label_selector(selector) or None

    async def event(
        self,
        regarding: ObjectReference,
        *,
        reason: str,
        action: str,
        note: str,
        warning: bool = False,
    ) -> None:
        """One Event on `regarding`; a failure is logged, never raised."""
        now = datetime.now(UTC)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": "podinit-", "namespace": regarding["namespace"]},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "action": action,
            "note": clean(note, NOTE_LIMIT),
            "regarding": regarding,
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": clean(self.identity, 128),
        }
        path = f"/apis/events.k8s.io/v1/namespaces/{regarding['namespace']}/events"
        status, answer = await self.api.call("POST", path, body)
        if status >= 300:
            log.warning("writing an Event %s: HTTP %s %s", reason, status, _message(answer))


def owner_reference(pod: UnwrappedPod, owner_api_version: str) -> ObjectReference:
    """The Event's `regarding` for a pod's owner (the pod itself when it has none)."""
    if pod.owner is None:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
        }
    return {
        "apiVersion": owner_api_version,
        "kind": pod.owner.kind,
        "name": pod.owner.name,
        "namespace": pod.namespace,
        "uid": pod.owner.uid,
    }


def _wrapped(pod: Any, settings: InjectSettings) -> bool:
    if not isinstance(pod, dict):
        return False
    plan = prepare(pod, settings)
    seen = observe(plan, plan.decide({}), selected=True)
    return (
        bool(seen)
        and all(o.state in (State.WRAPPED, State.SKIPPED) for o in seen)
        and any(o.state == State.WRAPPED for o in seen)
    )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _created(pod: dict[str, Any]) -> int:
    return _seconds((pod.get("metadata") or {}).get("creationTimestamp"))


def _seconds(value: object) -> int:
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message", ""))[:200]
    return ""
