"""The pod's registry credentials, as the kubelet will have them: the pod's imagePullSecrets,
or, when it lists none, its ServiceAccount's (what the ServiceAccount admission plugin copies
into such a pod; read here too for apiservers without that plugin and for `podinit scan`).

Read through the Kubernetes API (RBAC: get on secrets and serviceaccounts), cached briefly per
(namespace, name) and read once however many admissions want it at the same time, so a burst
of admissions of one Deployment reads each object once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from webhook.registry import SingleFlight

log = logging.getLogger("podinit.pullsecrets")  # named as the server's loggers are

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"  # the legacy format: the `auths` map alone


class CoreApi(Protocol):
    """The two calls of kubernetes.aio's CoreV1Api that this module uses."""

    async def read_namespaced_secret(self, name: str, namespace: str) -> Any: ...
    async def read_namespaced_service_account(self, name: str, namespace: str) -> Any: ...


_MISSING = object()  # not in the cache, or stale
_KINDS = {"sa": "service account", "secret": "pull secret"}


class PullSecretReader:
    """Pull-secret payloads per pod, from objects cached for `ttl` seconds (failures too: an
    unreadable object counts as absent until then). Concurrent admissions that miss the same
    object share one read, which gives up after `read_timeout` seconds (not cached: the next
    admission tries again), so an API call that hangs holds nobody for long."""

    def __init__(self, api: CoreApi, *, ttl: float = 30.0, read_timeout: float = 5.0) -> None:
        self.api = api
        self.ttl = ttl
        self.read_timeout = read_timeout
        self._cache: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._reads: SingleFlight[tuple[str, str, str], Any] = SingleFlight()

    def known_for_pod(self, namespace: str, pod: Mapping[str, Any]) -> list[bytes] | None:
        """`for_pod`'s answer from the cache alone, or None when something must be read first.
        The admission hot path asks this first: no task, no timeout scope."""
        payloads, missing = self._walk(namespace, pod, {})
        return payloads if missing is None else None

    async def for_pod(self, namespace: str, pod: Mapping[str, Any]) -> list[bytes]:
        """dockerconfigjson payloads in the order the kubelet would try them."""
        read: dict[tuple[str, str, str], Any] = {}
        while True:
            payloads, missing = self._walk(namespace, pod, read)
            if missing is None:
                return payloads
            read[missing] = await self._reads.run(missing, functools.partial(self._read, missing))

    def _walk(
        self, namespace: str, pod: Mapping[str, Any], read: Mapping[tuple[str, str, str], Any]
    ) -> tuple[list[bytes], tuple[str, str, str] | None]:
        """The payloads as far as known, and the first object still to read (None: all known).
        The ServiceAccount comes before its secrets: it names them."""
        spec = pod.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        names = _names(spec.get("imagePullSecrets"))
        account = spec.get("serviceAccountName") or "default"
        if not names and isinstance(account, str):
            key = ("sa", namespace, account)
            listed = self._known(key, read)
            if listed is _MISSING:
                return [], key
            names += listed
        payloads = []
        for name in dict.fromkeys(names):  # de-duplicated, order kept
            key = ("secret", namespace, name)
            payload = self._known(key, read)
            if payload is _MISSING:
                return [], key
            if payload is not None:
                payloads.append(payload)
        return payloads, None

    def _known(self, key: tuple[str, str, str], read: Mapping[tuple[str, str, str], Any]) -> Any:
        """What this call has just read, else the fresh cache entry, else _MISSING."""
        value = read.get(key, _MISSING)
        return self._fresh(key) if value is _MISSING else value

    def _fresh(self, key: tuple[str, str, str]) -> Any:
        hit = self._cache.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else _MISSING

    def close(self) -> None:
        """Stop reads still in flight (at shutdown)."""
        self._reads.cancel_all()

    async def _read(self, key: tuple[str, str, str]) -> Any:
        kind, namespace, name = key
        try:
            async with asyncio.timeout(self.read_timeout):
                if kind == "sa":
                    value: Any = await self._account_secrets(namespace, name)
                else:
                    value = await self._payload(namespace, name)
        except TimeoutError:
            log.info("reading %s %s/%s timed out", _KINDS[kind], namespace, name)
            return [] if kind == "sa" else None
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.ttl, value)
        return value

    async def _account_secrets(self, namespace: str, name: str) -> list[str]:
        try:
            account = await self.api.read_namespaced_service_account(name, namespace)
        except Exception as error:  # any API failure means: no credentials from there
            log.info("service account %s/%s unreadable: %s", namespace, name, _status(error))
            return []
        return _names([{"name": ref.name} for ref in account.image_pull_secrets or []])

    async def _payload(self, namespace: str, name: str) -> bytes | None:
        try:
            secret = await self.api.read_namespaced_secret(name, namespace)
        except Exception as error:
            log.info("pull secret %s/%s unreadable: %s", namespace, name, _status(error))
            return None
        data = secret.data or {}
        try:
            if secret.type == DOCKER_CONFIG_JSON and ".dockerconfigjson" in data:
                return base64.b64decode(data[".dockerconfigjson"], validate=True)
            if secret.type == DOCKER_CFG and ".dockercfg" in data:
                auths = json.loads(base64.b64decode(data[".dockercfg"], validate=True))
                return json.dumps({"auths": auths}).encode()
        except ValueError:  # binascii.Error and JSONDecodeError; never quote the data
            log.info("pull secret %s/%s is not valid %s", namespace, name, secret.type)
        return None


def _names(refs: object) -> list[str]:
    if not isinstance(refs, list):
        return []
    return [r["name"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("name"), str)]


def _status(error: Exception) -> str:
    """The API status without the response body (which could echo secret data)."""
    return str(getattr(error, "status", "")) or type(error).__name__
