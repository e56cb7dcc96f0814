"""One replica leads: a coordination.k8s.io/v1 Lease, held the way Kubernetes' controllers hold
theirs.

A candidate takes the Lease when it does not exist, when it holds it already, when it is
released (no holder), or when its record has not changed for a whole `duration` as this
replica saw it (its own clock, as client-go does: the holder's renewTime is another machine's
clock). Every write carries the resourceVersion read, so of two candidates writing at once the
apiserver keeps one (409 for the other). The leader renews every `retry` seconds and stops
leading as soon as it has not renewed for `deadline` seconds (< `duration`, so it stops before
anyone else may start). Stopping (SIGTERM) releases the Lease, so a rolling update hands over at
once instead of after `duration`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from webhook.kube import JsonApi

log = logging.getLogger("podinit.lease")

DURATION_SECONDS = 15.0
DEADLINE_SECONDS = 10.0
RETRY_SECONDS = 2.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Leadership:
    def __init__(
        self,
        *,
        api: JsonApi,
        namespace: str,
        name: str,
        identity: str,
        duration: float = DURATION_SECONDS,
        deadline: float = DEADLINE_SECONDS,
        retry: float = RETRY_SECONDS,
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        if not retry < deadline < duration:
            raise ValueError("a Lease needs retry < deadline < duration")
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self.duration, self.deadline, self.retry = duration, deadline, retry
        self.on_change = on_change
        self.leading = False
        self._other_holder = False  # the last read named another holder
        self._writing = False  # a write in flight may have taken the Lease before a cancel
        self._seen: tuple[str | None, Any] | None = None  # (holder, renewTime) last read
        self._seen_at = 0.0  # when that record last changed, on this replica's clock

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Until cancelled: wait to lead, run `lead` while leading (cancelled when leadership is
        lost), release the Lease when cancelled, or when `lead` ended on its own (a crash: the
        Lease goes to another replica, this one waits `duration` before it runs again)."""
        try:
            while True:
                sent = time.monotonic()  # the deadline counts from when the taking write went
                while not await self._try():
                    await asyncio.sleep(self.retry)
                    sent = time.monotonic()
                self._set(True)
                if await self._lead(lead, renewed=sent) == "ended":
                    self._set(False)
                    with contextlib.suppress(Exception):
                        await self._release()
                    await asyncio.sleep(self.duration)
        finally:
            if self.leading or self._writing:
                if self.leading:
                    self._set(False)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release())

    async def _lead(self, lead: Callable[[], Awaitable[None]], *, renewed: float) -> str:
        """Run `lead` while the Lease is renewed; "lost" when a renewal did not succeed within
        `deadline` of the start of the last one that did (`renewed`: a call still in flight
        then is abandoned: the others may take over at `duration`) or another holds it,
        "ended" when `lead` returned."""
        log.info("leading", extra={"lease": f"{self.namespace}/{self.name}"})
        work = asyncio.ensure_future(lead())
        outcome = "lost"
        try:
            while (remaining := renewed + self.deadline - time.monotonic()) > 0:
                if work.done():
                    outcome = "ended"
                    break
                await asyncio.sleep(min(self.retry, remaining))
                started = time.monotonic()
                remaining = renewed + self.deadline - started
                if remaining <= 0:
                    break
                try:
                    if await asyncio.wait_for(self._try(), timeout=remaining):
                        renewed = started
                    elif self._other_holder:
                        break
                except TimeoutError:
                    break
        finally:
            work.cancel()
            [result] = await asyncio.gather(work, return_exceptions=True)
        if isinstance(result, Exception):
            log.error("the leader's work failed", exc_info=result)
        if outcome == "lost":
            log.warning("lost the lease", extra={"lease": f"{self.namespace}/{self.name}"})
            self._set(False)
        else:
            log.warning("the leader's work ended; handing the lease on")
        return outcome

    def _set(self, leading: bool) -> None:
        self.leading = leading
        self.on_change(leading)

    @property
    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    async def _try(self) -> bool:
        """Take or renew the Lease; False when another holds it or the write lost."""
        try:
            status, lease = await self.api.call("GET", f"{self._path}/{self.name}")
        except Exception as error:
            log.warning("reading the lease failed: %s", type(error).__name__)
            return False
        if status == 404:
            return await self._write(None)
        if status >= 300 or not isinstance(lease, dict):
            log.warning("reading the lease failed: HTTP %s", status)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"))
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()
        held_by_other = holder not in (None, "", self.identity)
        self._other_holder = held_by_other
        if held_by_other and time.monotonic() - self._seen_at < self.duration:
            return False
        return await self._write(lease)

    async def _write(self, lease: dict[str, Any] | None) -> bool:
        now = _micro(_now())
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": now,
        }
        if lease is None:
            body = {"metadata": {"name": self.name}, "spec": {**spec, "acquireTime": now}}
            method, path = "POST", self._path
        else:
            old = lease.get("spec") or {}
            if old.get("holderIdentity") != self.identity:  # taken over, or released
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + 1
            version = (lease.get("metadata") or {}).get("resourceVersion")
            body = {
                "metadata": {"name": self.name, "resourceVersion": version},
                "spec": {**old, **spec},
            }
            method, path = "PUT", f"{self._path}/{self.name}"
        self._writing = True  # stays set when cancelled: the apiserver may have applied it
        try:
            status, _ = await self.api.call(method, path, body)
        except Exception as error:
            self._writing = False
            log.warning("writing the lease failed: %s", type(error).__name__)
            return False
        self._writing = False
        if status >= 300:
            if status != 409:  # 409: another candidate wrote first
                log.warning("writing the lease failed: HTTP %s", status)
            return False
        self._seen = None
        return True

    async def _release(self) -> None:
        status, lease = await self.api.call("GET", f"{self._path}/{self.name}")
        if status >= 300 or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = None
        await self.api.call("PUT", f"{self._path}/{self.name}", lease)
        log.info("released the lease", extra={"lease": f"{self.namespace}/{self.name}"})


def _micro(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
