"""Which pods are unwrapped now, kept from the pod watch's events (webhook/server/podwatch.py).

A pod's state is the one `podinit scan` gives it (core/observed.py) with the same selectors
(the namespace gate's read of the installed webhook configuration): this module decides
nothing of its own. Its metadata comes first; only a pod whose metadata says it may be
unwrapped (`may_be_unwrapped`: no status, a recorded failure, a spec changed since admission)
in a namespace the webhook selects has its spec read, once per generation, and is kept as a
small record if unwrapped. Nothing else is kept: memory grows with the unwrapped pods, not
with the cluster (a pod that needed a look and was fine costs one uid and generation).

Image configs are not looked up: whether a container is slipped or failed does not depend on
them (a pod without a status is slipped whatever the webhook would answer; one with a status
is what the status records).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webhook.core import (
    UNWRAPPED,
    InjectSettings,
    InvalidPod,
    Observation,
    Outcome,
    Pending,
    State,
    may_be_unwrapped,
    observe,
    prepare,
)

log = logging.getLogger("podinit.unwrapped")

Sends = Callable[[str, Mapping[str, str]], "bool | None"]
ReadPod = Callable[[str, str], Awaitable["dict[str, Any] | None"]]


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str
    name: str
    uid: str
    api_version: str = "v1"


@dataclass(frozen=True, slots=True)
class UnwrappedPod:
    namespace: str
    name: str
    uid: str
    state: State  # SLIPPED when a container slipped, else FAILED
    created: float  # seconds since the epoch
    owner: Owner | None  # its controller
    generation: int
    containers: tuple[str, ...]  # the unwrapped ones ("*": the whole pod)
    # A new admission would wrap something (not every container skipped, no bad option
    # annotation): only then is replacing it worth a pod's restart.
    wrappable: bool = True


class UnwrappedPods:
    def __init__(
        self, *, settings: Callable[[], InjectSettings], sends: Sends, read_pod: ReadPod
    ) -> None:
        self.settings = settings  # the admissions' current ones (`auto` follows the nodes)
        self.sends = sends
        self.read_pod = read_pod
        self.pods: dict[str, UnwrappedPod] = {}  # by uid
        self._looked: dict[str, int] = {}  # uid -> generation read and found not unwrapped
        self.unread: dict[str, dict[str, Any]] = {}  # metadata of pods whose read failed
        self._reading: set[str] = set()  # uids being read: a deletion meanwhile takes one out
        self.reads = 0  # specs read, for tests and the benchmark

    async def changed(self, metadata: Mapping[str, Any]) -> None:
        """A pod's metadata as the watch saw it (added, changed or listed)."""
        uid = str(metadata.get("uid", ""))
        generation = _generation(metadata)
        if not self._candidate(metadata):
            self.forget(uid)
            return
        known = self.pods.get(uid)
        if (known and known.generation == generation) or self._looked.get(uid) == generation:
            return  # a spec is read once per generation: status updates change nothing
        namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
        self._reading.add(uid)
        try:
            pod = await self.read_pod(namespace, name)
        except Exception as error:  # one pod's read never costs a relist: read again later
            log.info("reading pod %s/%s failed (%s); again later", namespace, name, error)
            if uid in self._reading:
                self.unread[uid] = dict(metadata)
            self._reading.discard(uid)
            return
        if uid not in self._reading:
            return  # deleted while it was read: the answer must not bring it back
        self._reading.discard(uid)
        self.unread.pop(uid, None)
        self.reads += 1
        if pod is None or (pod.get("metadata") or {}).get("uid") != uid:
            self.forget(uid)  # gone, or replaced under the same name
            return
        found = self._observed(pod)
        self._looked.pop(uid, None)
        self.pods.pop(uid, None)
        if found is None:
            self._looked[uid] = generation
        else:
            self.pods[uid] = found

    def _candidate(self, metadata: Mapping[str, Any]) -> bool:
        if not may_be_unwrapped(metadata):
            return False
        labels = metadata.get("labels") or {}
        return self.sends(str(metadata.get("namespace", "")), labels) is True

    def _observed(self, pod: dict[str, Any]) -> UnwrappedPod | None:
        metadata = pod.get("metadata") or {}
        try:
            plan = prepare(pod, self.settings())
            mutation = plan.decide({})
            seen = observe(plan, mutation, selected=True)
        except InvalidPod as error:  # the apiserver stored it; the core cannot read it
            log.warning(
                "cannot read pod %s/%s: %s", metadata.get("namespace"), metadata.get("name"), error
            )
            return None
        unwrapped = [o for o in seen if o.state in UNWRAPPED]
        if not unwrapped:
            return None
        state = State.SLIPPED if any(o.state == State.SLIPPED for o in unwrapped) else State.FAILED
        return UnwrappedPod(
            namespace=str(metadata.get("namespace", "")),
            name=str(metadata.get("name", "")),
            uid=str(metadata.get("uid", "")),
            state=state,
            created=_timestamp(metadata.get("creationTimestamp")),
            owner=controller(metadata),
            generation=_generation(metadata),
            containers=tuple(o.container for o in unwrapped),
            wrappable=isinstance(plan, Pending)
            and any(d.outcome is not Outcome.SKIPPED for d in mutation.decisions),
        )

    async def read_again(self) -> None:
        """The pods whose spec could not be read, once more."""
        for metadata in list(self.unread.values()):
            await self.changed(metadata)

    def deleted(self, metadata: Mapping[str, Any]) -> None:
        uid = str(metadata.get("uid", ""))
        self._reading.discard(uid)
        self.forget(uid)

    def forget(self, uid: str) -> None:
        self.pods.pop(uid, None)
        self._looked.pop(uid, None)
        self.unread.pop(uid, None)

    def relisted(self, uids: set[str]) -> None:
        """After a whole list: pods not in it are gone."""
        for uid in [u for u in self.pods if u not in uids]:
            del self.pods[uid]
        for uid in [u for u in self._looked if u not in uids]:
            del self._looked[uid]
        for uid in [u for u in self.unread if u not in uids]:
            del self.unread[uid]
        self._reading &= uids

    def forget_namespaces(self, namespaces: frozenset[str]) -> None:
        """Pods of namespaces the webhook no longer selects are not unwrapped any more."""
        for uid in [u for u, p in self.pods.items() if p.namespace in namespaces]:
            del self.pods[uid]

    def reset(self) -> None:
        """Before a list under other selectors: every pod is looked at again."""
        self.pods.clear()
        self._looked.clear()
        self.unread.clear()
        self._reading.clear()

    def counts(self) -> Counter[tuple[str, str]]:
        """Unwrapped pods per (namespace, state)."""
        return Counter((p.namespace, str(p.state)) for p in self.pods.values())

    def oldest(self, now: float | None = None) -> dict[str, float]:
        """Per state, the age in seconds of the oldest unwrapped pod."""
        now = time.time() if now is None else now
        ages: dict[str, float] = {}
        for p in self.pods.values():
            ages[str(p.state)] = max(ages.get(str(p.state), 0.0), now - p.created)
        return ages


def observed(pod: Any, settings: InjectSettings) -> tuple[Observation, ...] | None:
    """`podinit scan`'s states of a pod's containers (no image configs: they do not change
    the states); None when the core cannot read it."""
    if not isinstance(pod, dict):
        return None
    try:
        plan = prepare(pod, settings)
        return observe(plan, plan.decide({}), selected=True)
    except InvalidPod:
        return None


def controller(metadata: Mapping[str, Any]) -> Owner | None:
    """The owner reference marked controller, if any."""
    for ref in metadata.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return Owner(
                str(ref.get("kind", "")),
                str(ref.get("name", "")),
                str(ref.get("uid", "")),
                str(ref.get("apiVersion", "")),
            )
    return None


def _generation(metadata: Mapping[str, Any]) -> int:
    value = metadata.get("generation", 1)
    return value if isinstance(value, int) else 1


def _timestamp(value: object) -> float:
    if not isinstance(value, str):
        return time.time()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
