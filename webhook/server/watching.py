"""The leading replica's work beside admissions (`podWatch`, `reconcile`): watch pods, export
what is unwrapped, and, when asked to, replace what slipped through.

Every replica runs for the Lease; the one holding it lists and watches pods
(webhook/server/podwatch.py into webhook/server/unwrapped.py) and runs the reconciler
(webhook/server/reconcile.py). A replica that loses or never holds the Lease exports no
unwrapped-pod series (`podinit_leader` 0), so a sum over replicas counts each pod once. A
change of the installed webhook configuration's selectors (the namespace gate's answer) lists
pods again, since every pod's state may have changed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from webhook.server.lease import Leadership
from webhook.server.namespaces import NamespaceGate
from webhook.server.podwatch import PodWatch
from webhook.server.reconcile import Reconciler
from webhook.server.unwrapped import UnwrappedPods

log = logging.getLogger("podinit.watching")

SELECTOR_CHECK_SECONDS = 5.0


class Watching:
    def __init__(
        self,
        *,
        leadership: Leadership,
        watch: PodWatch,
        pods: UnwrappedPods,
        gate: NamespaceGate,
        reconciler: Reconciler | None,
    ) -> None:
        self.leadership, self.watch, self.pods = leadership, watch, pods
        self.gate, self.reconciler = gate, reconciler

    async def run(self) -> None:
        await self.leadership.run(self._lead)

    async def _lead(self) -> None:
        """While leading: the watch (again under new selectors) and the reconciler."""
        tasks: list[asyncio.Task[None]] = []
        try:
            while True:
                changes = self.gate.changes
                self.pods.reset()
                self.watch.synced.clear()
                tasks = [asyncio.ensure_future(self.watch.run())]
                if self.reconciler is not None:
                    tasks.append(asyncio.ensure_future(self.reconciler.run(self.watch.synced.wait)))
                while self.gate.changes == changes:
                    await asyncio.sleep(SELECTOR_CHECK_SECONDS)
                    for task in tasks:
                        if task.done():
                            task.result()  # a crash ends the leadership: another replica leads
                log.info("the webhook's selectors changed: listing pods again")
                await _cancel(tasks)
        finally:
            await _cancel(tasks)
            self.pods.reset()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*tasks, return_exceptions=True)
