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
from typing import Any

from webhook.server.lease import Leadership
from webhook.server.namespaces import NamespaceGate
from webhook.server.podwatch import PodWatch
from webhook.server.reconcile import Reconciler
from webhook.server.unwrapped import UnwrappedPods

log = logging.getLogger("podinit.watching")

SELECTOR_CHECK_SECONDS = 5.0
Hooks = tuple[tuple[frozenset[str], Any], ...]  # NamespaceGate.hooks


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
        """While leading: the watch and the reconciler, until a crash (another replica then
        leads). Namespaces selected or deselected on the way are listed or forgotten; a change
        of the object selectors lists every pod again."""
        self.pods.reset()
        self.watch.synced.clear()
        tasks = [asyncio.ensure_future(self.watch.run())]
        if self.reconciler is not None:
            tasks.append(asyncio.ensure_future(self.reconciler.run(self.watch.synced.wait)))
        try:
            hooks = self.gate.hooks
            while True:
                await asyncio.sleep(SELECTOR_CHECK_SECONDS)
                for task in tasks:
                    if task.done():
                        task.result()  # a crash ends the leadership: another replica leads
                try:
                    await self.pods.read_again()
                    if self.gate.hooks != hooks:
                        await self._selectors_changed(hooks, self.gate.hooks)
                        hooks = self.gate.hooks
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the API for a moment: again in a few seconds
                    log.warning("reading or listing pods failed (%s); again soon", error)
        finally:
            await _cancel(tasks)
            self.pods.reset()

    async def _selectors_changed(self, before: Hooks, after: Hooks) -> None:
        if [objects for _, objects in before] != [objects for _, objects in after]:
            log.info("the webhook's object selectors changed: listing every pod again")
            self.pods.reset()
            await self.watch.list_all()
            return
        old = frozenset().union(*(names for names, _ in before))
        new = frozenset().union(*(names for names, _ in after))
        self.pods.forget_namespaces(old - new)
        for namespace in sorted(new - old):
            await self.watch.list_namespace(namespace)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*tasks, return_exceptions=True)
