"""Builds the leading replica's work (webhook/server/watching.py) from the config."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes.aio import client as kube

from webhook.config import Config, ConfigError
from webhook.core import InjectSettings
from webhook.kube import Calls
from webhook.server.cluster_actions import ClusterActions
from webhook.server.lease import Leadership
from webhook.server.namespaces import NamespaceGate
from webhook.server.podwatch import PodWatch
from webhook.server.reconcile import Reconciler, ReconcileSettings
from webhook.server.unwrapped import UnwrappedPods
from webhook.server.watching import Watching
from webhook.server.workloads import Workloads

READ_TIMEOUT_SECONDS = 10.0


def watching(
    config: Config,
    *,
    api: kube.ApiClient,
    settings: Callable[[], InjectSettings],
    gate: NamespaceGate,
    ready: Any,
) -> Watching:
    """`ready()`: this replica serves admissions (its readiness); `settings()`: the
    admissions' current settings (`auto` mode changes with the nodes)."""
    if config.reconcile and not config.reconcile_probe_namespace:
        raise ConfigError(
            "reconcile needs reconcileProbeNamespace: a namespace the webhook selects, where a "
            "dry-run pod shows that the apiserver reaches the webhook"
        )
    # The pod's name and this process: a server restarted in the same pod is a new candidate
    # that waits out the old holder's Lease like any other, as client-go's identities do.
    identity = f"{config.pod_name or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    calls = Calls(api, timeout=READ_TIMEOUT_SECONDS)

    async def read_pod(namespace: str, name: str) -> dict[str, Any] | None:
        status, body = await calls.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if status == 404:
            return None
        if status >= 300 or not isinstance(body, dict):
            raise RuntimeError(f"reading pod {namespace}/{name}: HTTP {status}")
        return body

    pods = UnwrappedPods(settings=settings, sends=gate.sends, read_pod=read_pod)
    watch = PodWatch(
        kube.CoreV1Api(api), changed=pods.changed, deleted=pods.deleted, relisted=pods.relisted
    )
    reconciler: Reconciler | None = None
    if config.reconcile:
        assert config.reconcile_probe_namespace is not None
        reconciler = Reconciler(
            pods=pods,
            actions=ClusterActions(api=calls, settings=settings, identity=identity),
            workloads=Workloads(api=calls, settings=settings),
            settings=ReconcileSettings(
                own_namespace=config.namespace,
                probe_namespace=config.reconcile_probe_namespace,
                dry_run=config.reconcile_dry_run,
                per_minute=config.reconcile_evictions_per_minute,
                namespace_per_minute=config.reconcile_namespace_evictions_per_minute,
                ready_timeout=config.reconcile_ready_timeout_seconds,
                retry=config.reconcile_retry_seconds,
                stall=config.reconcile_stall_seconds,
                interval=config.reconcile_interval_seconds,
                single_pod_workloads=config.reconcile_single_pod_workloads,
            ),
            ready=ready,
        )
    leadership = Leadership(
        api=calls,
        namespace=config.namespace,
        name=config.lease_name,
        identity=identity,
    )
    return Watching(leadership=leadership, watch=watch, pods=pods, gate=gate, reconciler=reconciler)
