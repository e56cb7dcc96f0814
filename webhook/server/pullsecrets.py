"""The pod's registry credentials: its imagePullSecrets, then its ServiceAccount's.

Read through the Kubernetes API (RBAC: get on secrets and serviceaccounts), cached briefly per
(namespace, name) so a burst of admissions of one Deployment reads each object once.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"  # the legacy format: the `auths` map alone


class CoreApi(Protocol):
    """The two calls of kubernetes.aio's CoreV1Api that this module uses."""

    async def read_namespaced_secret(self, name: str, namespace: str) -> Any: ...
    async def read_namespaced_service_account(self, name: str, namespace: str) -> Any: ...


class PullSecretReader:
    def __init__(self, api: CoreApi, *, ttl: float = 30.0) -> None:
        self.api = api
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, Any]] = {}

    async def for_pod(self, namespace: str, pod: Mapping[str, Any]) -> list[bytes]:
        """dockerconfigjson payloads in the order the kubelet would try them."""
        spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        names = _names(spec.get("imagePullSecrets"))
        account = spec.get("serviceAccountName") or "default"
        if isinstance(account, str):
            names += await self._cached("sa", namespace, account, self._account_secrets)
        payloads = []
        for name in dict.fromkeys(names):  # de-duplicated, order kept
            payload = await self._cached("secret", namespace, name, self._payload)
            if payload is not None:
                payloads.append(payload)
        return payloads

    async def _cached(self, kind: str, namespace: str, name: str, read: Any) -> Any:
        key = (kind, namespace, name)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await read(namespace, name)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, value)
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
        if secret.type == DOCKER_CONFIG_JSON and ".dockerconfigjson" in data:
            return base64.b64decode(data[".dockerconfigjson"])
        if secret.type == DOCKER_CFG and ".dockercfg" in data:
            auths = json.loads(base64.b64decode(data[".dockercfg"]))
            return json.dumps({"auths": auths}).encode()
        return None


def _names(refs: object) -> list[str]:
    if not isinstance(refs, list):
        return []
    return [r["name"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("name"), str)]


def _status(error: Exception) -> str:
    """The API status without the response body (which could echo secret data)."""
    return str(getattr(error, "status", "")) or type(error).__name__
