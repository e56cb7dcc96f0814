"""One replica leads (webhook/server/lease.py), on a real apiserver: two candidates, one
Lease; a leader whose apiserver stops answering stops leading within its renew deadline even
while its call hangs; the others take over once the Lease has not changed for its duration.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from kubernetes.aio import client as kube
from kubernetes.aio import config as kube_config

from e2e.controlplane import ControlPlane
from webhook.kube import Calls
from webhook.server.lease import Leadership

DURATION, DEADLINE, RETRY = 6.0, 4.0, 1.0


class FirstWriteUnanswered:
    """The real calls, but the answer to the first write never arrives: the apiserver has
    applied it while its caller still waits."""

    def __init__(self, calls: Calls) -> None:
        self.calls, self.written = calls, asyncio.Event()

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        result = await self.calls.call(method, path, body)
        if method in ("POST", "PUT") and not self.written.is_set():
            self.written.set()
            await asyncio.Event().wait()
        return result


@asynccontextmanager
async def candidate(
    cp: ControlPlane, namespace: str, identity: str, *, slow_writes: bool = False
) -> AsyncIterator[tuple[Leadership, list[str]]]:
    """A candidate running for the Lease `lease` in `namespace`; the list records what its
    work saw ("started", "cancelled"). With `slow_writes` the answer to its first write never
    arrives (`leadership.api.written` is set once the apiserver has it)."""
    configuration = kube.Configuration()
    await kube_config.load_kube_config(str(cp.kubeconfig), client_configuration=configuration)
    api = kube.ApiClient(configuration)
    seen: list[str] = []

    async def work() -> None:
        seen.append("started")
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("cancelled")

    calls = Calls(api, timeout=30)  # longer than the deadline: a hung call must not matter
    leadership = Leadership(
        api=FirstWriteUnanswered(calls) if slow_writes else calls,
        namespace=namespace,
        name="lease",
        identity=identity,
        duration=DURATION,
        deadline=DEADLINE,
        retry=RETRY,
    )
    task = asyncio.ensure_future(leadership.run(work))
    try:
        yield leadership, seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()


async def until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` holds; AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def run(coroutine: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coroutine())  # type: ignore[arg-type]


def test_exactly_one_of_two_candidates_leads_and_a_cancelled_leader_hands_over(
    control_plane: ControlPlane, namespace: str
) -> None:
    async def scenario() -> None:
        async with candidate(control_plane, namespace, "a") as (a, seen_a):
            await until("a leads", lambda: a.leading, 10)
            async with candidate(control_plane, namespace, "b") as (b, seen_b):
                await asyncio.sleep(DURATION + 2 * RETRY)
                assert a.leading and not b.leading and seen_b == []
            # b was cancelled without leading; now a is cancelled: it releases the Lease
        async with candidate(control_plane, namespace, "c") as (c, _):
            await until("c leads at once: the Lease was released", lambda: c.leading, RETRY * 3)
        assert seen_a == ["started", "cancelled"]

    run(scenario)


def test_a_candidate_stopped_while_its_taking_write_is_unanswered_releases_the_lease(
    control_plane: ControlPlane, namespace: str
) -> None:
    async def scenario() -> None:
        async with candidate(control_plane, namespace, "a", slow_writes=True) as (a, seen):
            assert isinstance(a.api, FirstWriteUnanswered)
            await until("a's write reached the apiserver", a.api.written.is_set, 10)
            assert not a.leading and seen == []
        # a was stopped holding the Lease without knowing it: it released it anyway
        async with candidate(control_plane, namespace, "c") as (c, _):
            await until("c leads at once: the Lease was released", lambda: c.leading, RETRY * 3)

    run(scenario)


def test_a_leader_whose_apiserver_hangs_stops_leading_within_its_deadline(
    control_plane: ControlPlane, namespace: str
) -> None:
    [apiserver] = [p for p in control_plane.core if p.name == "kube-apiserver"]

    async def scenario() -> None:
        async with candidate(control_plane, namespace, "a") as (a, seen):
            await until("a leads", lambda: a.leading, 10)
            os.kill(apiserver.popen.pid, signal.SIGSTOP)
            try:
                # the renewal in flight hangs for as long as the apiserver does
                await until("a stops leading", lambda: not a.leading, DEADLINE + RETRY + 1)
                assert seen == ["started", "cancelled"]
            finally:
                os.kill(apiserver.popen.pid, signal.SIGCONT)

    run(scenario)
