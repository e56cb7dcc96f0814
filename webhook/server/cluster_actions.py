"""What the reconciler asks of the apiserver: evict a pod, prove the webhook is reached, and
leave an Event on the object acted on (workloads are read by webhook/server/workloads.py).
Policy (which pod, when, how many) lives in webhook/server/reconcile.py.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from webhook.core import InjectSettings, State
from webhook.kube import JsonApi
from webhook.server.event_content import ObjectReference, clean
from webhook.server.unwrapped import UnwrappedPod, observed

log = logging.getLogger("podinit.reconcile")

REQUEST_TIMEOUT_SECONDS = 10.0
REPORTING_CONTROLLER = "podinit.dev/reconciler"
PROBE_POD = "podinit-serving-probe"
NOTE_LIMIT = 1024


class Eviction(enum.Enum):
    EVICTED = "evicted"
    REFUSED = "refused"  # 429: a PodDisruptionBudget does not allow it now
    GONE = "gone"  # 404
    CONFLICT = "conflict"  # 409: the pod's uid changed, or the budget's update conflicted
    FAILED = "failed"


class ClusterActions:
    def __init__(
        self, *, api: JsonApi, settings: Callable[[], InjectSettings], identity: str
    ) -> None:
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
        if status == 404:
            return Eviction.GONE
        if status == 409:  # the pod is still there or not: the watch says which
            return Eviction.CONFLICT
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
                        "image": self.settings().init_image,
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
        return _wrapped(answer, self.settings())

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
        try:
            status, answer = await self.api.call("POST", path, body)
        except Exception as error:  # the action it reports happened: the pass goes on
            log.warning("writing an Event %s: %s", reason, type(error).__name__)
            return
        if status >= 300:
            log.warning("writing an Event %s: HTTP %s %s", reason, status, _message(answer))


def owner_reference(pod: UnwrappedPod) -> ObjectReference:
    """An Event's `regarding`: the pod's controller, or the pod itself when it has none."""
    owner = pod.owner
    if owner is None:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
        }
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "namespace": pod.namespace,
        "uid": owner.uid,
    }


def _wrapped(pod: Any, settings: InjectSettings) -> bool:
    """The probe came back with its one container wrapped."""
    seen = observed(pod, settings)
    return bool(seen) and all(o.state == State.WRAPPED for o in seen or ())


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message", ""))[:200]
    return ""
