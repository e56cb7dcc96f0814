"""Warning Events (events.k8s.io/v1) for pods podinit should have wrapped and did not.

The admission path calls `EventRecorder.notice` once the core has decided: synchronous, a
dictionary lookup per failed container, never blocking and never raising into the admission.
Repeats of the same failure (same namespace, regarding object, reason and note) within
`window` seconds of the previous one are folded into one entry in memory; only a failure not
seen recently goes into a bounded queue, and one that does not fit is dropped and counted.
`EventRecorder.run`, a background task of `podinit serve`, writes: a new Event for a queued
entry, and at most once per `interval` per entry a merge patch of that Event's `series`
(count, lastObservedTime) for the repeats folded in since. Every outcome is a count in
`podinit_events_total{result}`; API errors are counted and logged as counts, never raised.

What an Event says and is about: webhook/server/event_content.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, Protocol, TypedDict

from webhook.core import Mutation
from webhook.server.event_content import (
    ObjectReference,
    generate_name,
    namespace_reference,
    note,
    quoted,
    regarding_of,
)
from webhook.server.metrics import Metrics
from webhook.server.owners import Found, OwnerCheck, Unverifiable

log = logging.getLogger("podinit.events")

REASON = "PodinitNotWrapped"
ACTION = "Admit"
REPORTING_CONTROLLER = "podinit.dev/webhook"
NOTE_LIMIT = 1024  # bytes: the API refuses a longer note
NAME_LIMIT = 253  # an Event's name is a DNS subdomain
INSTANCE_LIMIT = 128  # reportingInstance
# A failure seen again within this many seconds of the previous time continues its Event's
# series; later, it starts a new Event (client-go's events library uses 6 minutes too).
WINDOW_SECONDS = 360.0
# At most one write per Event this often: the series of a failure repeated 1000 times a
# minute costs two API calls a minute.
INTERVAL_SECONDS = 30.0
MAX_CREATING = 32  # new Events checked and written at the same time
# Failures remembered at once (the least recently seen is forgotten first).
MAX_ENTRIES = 10_000
REQUEST_TIMEOUT_SECONDS = 5.0
# Failed writes are logged as a count at most this often.
FAILURE_LOG_SECONDS = 60.0


class Series(TypedDict):
    count: int
    lastObservedTime: datetime | str


class EventBody(TypedDict):
    """An events.k8s.io/v1 Event as created."""

    metadata: dict[str, str]
    eventTime: datetime
    type: str
    reason: str
    action: str
    note: str
    regarding: ObjectReference
    reportingController: str
    reportingInstance: str
    series: NotRequired[Series]


class SeriesPatch(TypedDict):
    series: Series


class EventsApi(Protocol):
    """What is used of kubernetes.aio's EventsV1Api."""

    async def create_namespaced_event(
        self, namespace: str, body: Any, *, _request_timeout: float
    ) -> Any: ...

    async def patch_namespaced_event(
        self, name: str, namespace: str, body: Any, *, _content_type: str, _request_timeout: float
    ) -> Any: ...


Key = tuple[str, str, str, str, str, str]  # namespace, apiVersion, kind, name, uid, note


@dataclass(slots=True)
class _Entry:
    namespace: str
    regarding: ObjectReference
    note: str
    first: datetime
    last: datetime
    seen: float  # time.monotonic() of the last occurrence
    count: int = 1  # occurrences
    written: int = 0  # occurrences the apiserver has been told of
    name: str | None = None  # the Event's, once created
    attempted: float = field(default=-math.inf)  # time.monotonic() of the last write attempt
    started: float = 0.0  # time.monotonic() of the first occurrence
    key: Key = ("", "", "", "", "", "")  # as noticed (regarding and note may change after)
    checked: bool = False  # what `regarding` names was read and is as named (OwnerCheck)
    discarded: bool = False  # it is not: repeats are folded into nothing
    creating: bool = False  # a task is checking and creating it (EventRecorder._creating)
    generated: str | None = None  # about the namespace: the pod's generateName, if it had one
    pod_note: str = ""  # and the note once the pod it became is found


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")


def _micro_time(moment: datetime) -> datetime:
    """A MicroTime the client sends with its microseconds: it writes datetimes with
    isoformat(), which leaves out a zero fraction the apiserver's parser requires."""
    return moment if moment.microsecond else moment.replace(microsecond=1)


def _event_name(regarding: ObjectReference) -> str:
    suffix = f".{time.time_ns():x}"
    base = regarding["name"][: NAME_LIMIT - len(suffix)].rstrip(".-") or "podinit"
    return base + suffix


def _key(namespace: str, regarding: ObjectReference, note: str) -> Key:
    kind, name = regarding["kind"], regarding["name"]
    return (namespace, regarding["apiVersion"], kind, name, regarding.get("uid", ""), note)


class EventRecorder:
    def __init__(
        self,
        api: EventsApi,
        metrics: Metrics,
        *,
        queue_size: int,
        instance: str | None = None,
        window: float = WINDOW_SECONDS,
        interval: float = INTERVAL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        owners: OwnerCheck | None = None,
    ) -> None:
        self.api = api
        # None: `regarding` is written as the admission named it (tests without an apiserver).
        self.owners = owners
        self.metrics = metrics
        self.instance = _cut(instance or socket.gethostname(), INSTANCE_LIMIT)
        self.window = window
        self.interval = interval
        self.max_entries = max_entries
        self.request_timeout = request_timeout
        self._queue: asyncio.Queue[Key] = asyncio.Queue(maxsize=queue_size)
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        # New Events being checked and written: a bare pod's check waits for the apiserver to
        # store it, so each runs in a task of its own and none holds up the others.
        self._creating: set[asyncio.Task[None]] = set()
        self._failures = 0
        self._failures_logged = 0
        self._failure_logged_at = -math.inf

    # ----------------------------------------------------------------- the admission path

    def notice(self, namespace: str, pod: object, mutation: Mutation) -> None:
        """Record that this admission left containers unwrapped that should have been wrapped.
        Never blocks, never raises, never calls the API."""
        if not (mutation.warnings or mutation.denied) or not namespace:
            return
        found = note(mutation)
        if found is None:
            return
        regarding, who = regarding_of(namespace, pod)
        entry = self._observe(namespace, regarding, _cut(who + found, NOTE_LIMIT))
        if entry is not None and regarding["kind"] == "Namespace":
            entry.generated, entry.pod_note = generate_name(pod), _cut(found, NOTE_LIMIT)

    def _observe(self, namespace: str, regarding: ObjectReference, note: str) -> _Entry | None:
        """The new entry for a failure not seen recently; None: folded into one, or dropped."""
        key = _key(namespace, regarding, note)
        seen, now = time.monotonic(), datetime.now(UTC)
        entry = self._entries.get(key)
        if entry is not None and seen - entry.seen < self.window:
            entry.count += 1
            entry.last, entry.seen = now, seen
            self._entries.move_to_end(key)
            self.metrics.count_event("aggregated")
            return None
        self._entries.pop(key, None)
        try:
            self._queue.put_nowait(key)
        except asyncio.QueueFull:
            self.metrics.count_event("dropped")
            return None
        entry = _Entry(namespace, regarding, note, now, now, seen, started=seen, key=key)
        self._entries[key] = entry
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    # ----------------------------------------------------------------- the writer

    async def run(self) -> None:
        """Write queued Events at once and due series every `interval` seconds, until
        cancelled."""
        due = time.monotonic() + self.interval
        try:
            while True:
                if time.monotonic() >= due:
                    await self.flush()
                    due = time.monotonic() + self.interval
                try:
                    key = await asyncio.wait_for(
                        self._queue.get(), max(0.0, due - time.monotonic())
                    )
                except TimeoutError:
                    continue
                entry = self._entries.get(key)
                if entry is not None and entry.name is None:
                    await self._start_creating(entry)
        finally:
            for task in self._creating:
                task.cancel()

    async def _start_creating(self, entry: _Entry) -> None:
        if len(self._creating) >= MAX_CREATING:  # bounded: wait for one to finish
            await asyncio.wait(self._creating, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(self._create_checked(entry))
        self._creating.add(task)
        task.add_done_callback(self._creating.discard)

    async def _create_checked(self, entry: _Entry) -> None:
        entry.creating = True
        try:
            if await self._check(entry):
                await self._write(entry)
        finally:
            entry.creating = False

    async def flush(self) -> None:
        """Write what is due (series not written for `interval` seconds, Events whose creation
        failed), then forget failures not seen for `window` seconds."""
        now = time.monotonic()
        for entry in list(self._entries.values()):
            pending = entry.name is None or entry.count > entry.written
            if entry.creating or not pending or now - entry.attempted < self.interval:
                continue
            if await self._check(entry):
                await self._write(entry)
        for key, entry in list(self._entries.items()):
            if now - entry.seen >= self.window:
                del self._entries[key]

    async def _check(self, entry: _Entry) -> bool:
        """Whether the Event may be written: what it is about exists as the review named it
        (owners.py). An owner that does not exist or has another uid, a pod that was not
        created: the failure is discarded (counted `unverified`). One that cannot be read: the
        Event is about the namespace instead, naming the object in the note."""
        if entry.discarded:
            return False
        if entry.checked or self.owners is None:
            return True
        if entry.regarding["kind"] == "Namespace":
            return await self._check_generated(entry, self.owners)
        regarding = entry.regarding
        try:
            uid = await self.owners.uid(regarding, admitted=entry.first, admitted_at=entry.started)
        except Unverifiable:
            what = f"{regarding['kind']} {quoted(regarding['name'])}"
            entry.note = _cut(f"pod of {what}: {entry.note}", NOTE_LIMIT)
            entry.regarding = namespace_reference(entry.namespace)
            entry.checked = True
            return True
        if uid is None:
            entry.discarded = True
            self.metrics.count_event("unverified")
            return False
        entry.regarding = {**regarding, "uid": uid}
        entry.checked = True
        return True

    async def _check_generated(self, entry: _Entry, owners: OwnerCheck) -> bool:
        """A pod named by generateName only: about the one pod its admission created, if
        exactly one; about the namespace if several (or they cannot be listed); no Event if
        none was (or it had no generateName either: the apiserver refuses such a pod)."""
        created: list[Found] = []
        if entry.generated:
            try:
                created = await owners.created_pods(
                    entry.namespace,
                    entry.generated,
                    admitted=entry.first,
                    admitted_at=entry.started,
                )
            except Unverifiable:
                entry.checked = True
                return True
        if not created:
            entry.discarded = True
            self.metrics.count_event("unverified")
            return False
        if len(created) == 1:
            [pod] = created
            entry.regarding = {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.name,
                "namespace": entry.namespace,
                "uid": pod.uid,
            }
            entry.note = entry.pod_note
            # Its own entry from now on: the next pod failing alike is another pod.
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]
            entry.key = _key(entry.namespace, entry.regarding, entry.note)
            self._entries[entry.key] = entry
        entry.checked = True
        return True

    async def _write(self, entry: _Entry) -> None:
        entry.attempted = time.monotonic()
        count = entry.count
        try:
            if entry.name is None:
                name = await self._create(entry, count)
                entry.name = name
                result = "created"
            else:
                await self._patch(entry.name, entry, count)
                result = "series"
        except Exception as error:  # counted and logged as a count: never a traceback per Event
            gone = entry.name is not None and getattr(error, "status", None) == 404
            if gone and self._entries.get(entry.key) is entry:
                # The Event is gone (its TTL, or its namespace deleted): forget the failure,
                # whose next occurrence starts a new Event.
                del self._entries[entry.key]
            self._failed(error)
            return
        entry.written = count
        self.metrics.count_event(result)

    async def _create(self, entry: _Entry, count: int) -> str:
        name = _event_name(entry.regarding)
        body: EventBody = {
            "metadata": {"name": name, "namespace": entry.namespace},
            "eventTime": _micro_time(entry.first),
            "type": "Warning",
            "reason": REASON,
            "action": ACTION,
            "note": entry.note,
            "regarding": entry.regarding,
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.instance,
        }
        if count > 1:  # a burst folded in before the first write: the API wants count >= 2
            body["series"] = {"count": count, "lastObservedTime": _micro_time(entry.last)}
        await self.api.create_namespaced_event(
            entry.namespace, body, _request_timeout=self.request_timeout
        )
        return name

    async def _patch(self, name: str, entry: _Entry, count: int) -> None:
        last = entry.last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body: SeriesPatch = {"series": {"count": count, "lastObservedTime": last}}
        await self.api.patch_namespaced_event(
            name,
            entry.namespace,
            body,
            _content_type="application/merge-patch+json",
            _request_timeout=self.request_timeout,
        )

    def _failed(self, error: Exception) -> None:
        self.metrics.count_event("failed")
        self._failures += 1
        now = time.monotonic()
        if now - self._failure_logged_at >= FAILURE_LOG_SECONDS:
            log.warning(
                "writing Events failed: %d failures since the last report, the last %s %s",
                self._failures - self._failures_logged,
                type(error).__name__,
                getattr(error, "status", None) or "",
            )
            self._failures_logged, self._failure_logged_at = self._failures, now
