"""Which namespaces the installed podinit webhook selects: an admission reads pull secrets,
makes registry lookups and writes Events only for those.

Anyone who reaches /mutate can name any namespace in a review; the apiserver only sends pods of
namespaces the webhook configuration's namespaceSelector selects. So the gate asks the
apiserver the same question: it reads its own MutatingWebhookConfiguration (the setting
`webhookConfiguration`, which the chart sets; RBAC: get on that name alone), takes the
namespaceSelector of its webhook `pods.podinit.dev` (the chart's and deploy/'s name, the one
`podinit scan` reads too) and lists the namespaces it selects, the selector passed as
a label selector, so that the apiserver evaluates it with its own rules (webhook/cli's
evaluator cannot be imported here: the server and the CLI share only the layers below them).

The admission path asks `allows`: a set lookup. The answer is refreshed every `refresh`
seconds in the background; a namespace not in it (labelled a moment ago, or a forged review)
makes the admission wait for a refresh, at most one every `recheck` seconds whoever asks, so a
caller naming a thousand namespaces costs the apiserver one list per second.

Without that configuration or webhook (a server run by hand next to a configuration of another
name, as some tests do) nothing can be told apart: every namespace is allowed, and the log says
so once. The same holds until a first read succeeds (the API refused or did not answer): a
server that cannot read its own configuration limits nothing, as before this check existed; the
log says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from webhook.core.selection import WEBHOOK, label_selector, matches

log = logging.getLogger("podinit.namespaces")

REFRESH_SECONDS = 30.0
RECHECK_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 5.0


class AdmissionApi(Protocol):
    """What is used of kubernetes.aio's AdmissionregistrationV1Api."""

    async def read_mutating_webhook_configuration_without_preload_content(
        self, name: str, *, _request_timeout: float
    ) -> Any: ...


class NamespaceApi(Protocol):
    """What is used of kubernetes.aio's CoreV1Api."""

    async def list_namespace_without_preload_content(
        self, *, label_selector: str, _request_timeout: float
    ) -> Any: ...


class NamespaceGate:
    def __init__(
        self,
        *,
        admission: AdmissionApi,
        core: NamespaceApi,
        configuration: str,
        refresh: float = REFRESH_SECONDS,
        recheck: float = RECHECK_SECONDS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.admission = admission
        self.core = core
        self.configuration = configuration
        self.refresh = refresh
        self.recheck = recheck
        self.request_timeout = request_timeout
        self.selected: frozenset[str] = frozenset()
        # None: never read; False: no podinit webhook is installed. Either way, nothing is
        # told apart and every namespace is allowed.
        self.installed: bool | None = None
        # Per podinit webhook: the namespaces it selects and its objectSelector.
        self.hooks: tuple[tuple[frozenset[str], Any], ...] = ()
        self.changes = 0  # counts reads whose answer differed from the one before
        self._read_at = -float("inf")
        self._reading: asyncio.Task[None] | None = None

    def allows(self, namespace: str) -> bool:
        """Known to be selected: a set lookup, no I/O. False means: ask `check`."""
        return namespace in self.selected

    async def check(self, namespace: str) -> bool:
        """Selected, or nothing can be told (no configuration with the webhook, or none could
        be read yet). A namespace not known to be selected waits for a read that started after
        it was asked, at most one every `recheck` seconds whoever asks: a namespace labelled a
        moment ago (`kubectl create namespace`, `label`, `apply` in one go) is served, never
        refused for being new, even when a read under way began before the label. With no
        podinit webhook installed every namespace is allowed at once, and a read in the
        background notices an install within a second."""
        if self.allows(namespace):
            return True
        asked = time.monotonic()
        if self.installed is False:
            if asked - self._read_at >= self.recheck and not self._read_under_way():
                self._reading = asyncio.ensure_future(self._read())  # kept until the next
            return True
        while self._read_at < asked or self._read_under_way():
            if self._reading is not None and not self._reading.done():
                await asyncio.shield(self._reading)  # one read at a time, whoever started it
                continue
            wait = self._read_at + self.recheck - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._reading = asyncio.ensure_future(self._read())
        return self.allows(namespace) or self.installed is not True

    def _read_under_way(self) -> bool:
        return self._reading is not None and not self._reading.done()

    async def read(self) -> None:
        """Read the configurations and the namespaces they select: one read at a time, its
        failures logged and the previous answer kept."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        self._read_at = time.monotonic()
        try:
            selectors = await self._selectors()
            if not selectors:
                if self.installed is not False:
                    log.warning(
                        "MutatingWebhookConfiguration %s has no webhook %s: pull secrets, "
                        "lookups and Events are not limited to selected namespaces",
                        self.configuration,
                        WEBHOOK,
                    )
                self._answer(False, ())
                return
            listed: dict[str, frozenset[str]] = {}
            for namespace_selector, _ in selectors:
                if namespace_selector not in listed:
                    listed[namespace_selector] = frozenset(
                        await self._namespaces(namespace_selector)
                    )
        except Exception as error:  # the previous answer stands
            log.warning("reading the selected namespaces failed: %s", _status(error))
            return
        self._answer(True, tuple((listed[n], objects) for n, objects in selectors))

    def _answer(self, installed: bool, hooks: tuple[tuple[frozenset[str], Any], ...]) -> None:
        selected = frozenset().union(*(names for names, _ in hooks))
        if (installed, hooks) != (self.installed, self.hooks):
            self.changes += 1
        self.installed, self.hooks, self.selected = installed, hooks, selected

    def sends(self, namespace: str, pod_labels: Mapping[str, str]) -> bool | None:
        """Whether the apiserver sends such a pod to podinit, as of the last read (a
        namespaceSelector as the apiserver listed it, an objectSelector evaluated here); None
        when nothing could be read or no podinit webhook is installed."""
        if self.installed is not True:
            return None
        return any(
            namespace in names and matches(objects, pod_labels) for names, objects in self.hooks
        )

    async def _selectors(self) -> list[tuple[str, Any]]:
        """The (namespaceSelector, objectSelector) pairs of the configuration's podinit
        webhooks, the first as a label selector string; none if it is gone."""
        call = self.admission.read_mutating_webhook_configuration_without_preload_content
        try:
            response = await call(self.configuration, _request_timeout=self.request_timeout)
        except Exception as error:
            if getattr(error, "status", None) == 404:
                return []
            raise
        # Calls without preload content return error answers instead of raising them.
        status = getattr(response, "status", 200)
        if status == 404:
            return []
        if status >= 400:
            raise RuntimeError(
                f"reading MutatingWebhookConfiguration {self.configuration}: {status}"
            )
        configuration = orjson.loads(await response.read())
        return [
            (label_selector(hook.get("namespaceSelector")), hook.get("objectSelector"))
            for hook in configuration.get("webhooks") or []
            if hook.get("name") == WEBHOOK
        ]

    async def _namespaces(self, selector: str) -> list[str]:
        response = await self.core.list_namespace_without_preload_content(
            label_selector=selector, _request_timeout=self.request_timeout
        )
        if getattr(response, "status", 200) >= 400:
            raise RuntimeError(f"listing namespaces: {response.status}")
        items = orjson.loads(await response.read()).get("items") or []
        return [item["metadata"]["name"] for item in items]

    async def run(self) -> None:
        """Re-read every `refresh` seconds, until cancelled."""
        while True:
            await self.read()
            await asyncio.sleep(self.refresh)


def _status(error: Exception) -> str:
    return str(getattr(error, "status", "")) or type(error).__name__
