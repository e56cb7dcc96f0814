"""Webhook wiring for the harness: a MutatingWebhookConfiguration for pods calling a URL
(``mutating_webhook_configuration``) and a readiness probe (``http_ok``)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any


def mutating_webhook_configuration(
    name: str,
    url: str,
    ca_bundle: str,
    *,
    webhook_name: str | None = None,
    failure_policy: str = "Ignore",
    reinvocation_policy: str = "Never",
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    match_conditions: list[dict[str, str]] | None = None,
    operations: Sequence[str] = ("CREATE",),
    timeout_seconds: int = 10,
    side_effects: str = "NoneOnDryRun",
) -> dict[str, Any]:
    """A MutatingWebhookConfiguration for pods calling ``url`` (e.g.
    ``https://127.0.0.1:8443/mutate``) and trusting ``ca_bundle`` (base64 PEM, e.g.
    ``CertAuthority.ca_bundle``). Apply it with ``ControlPlane.apply``. ``side_effects``
    defaults to podinit's declaration: it writes Events, never on a dry run."""
    webhook: dict[str, Any] = {
        "name": webhook_name or f"{name}.podinit-e2e.test",
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": list(operations),
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ],
        "admissionReviewVersions": ["v1"],
        "sideEffects": side_effects,
        "failurePolicy": failure_policy,
        "reinvocationPolicy": reinvocation_policy,
        "timeoutSeconds": timeout_seconds,
        "namespaceSelector": namespace_selector or {},
        "objectSelector": object_selector or {},
    }
    if match_conditions:
        webhook["matchConditions"] = match_conditions
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def http_ok(url: str, verify: bool = True) -> bool:
    """GET ``url`` answers 200 (``verify=False``: any TLS certificate)."""
    ctx = None
    if url.startswith("https") and not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False
