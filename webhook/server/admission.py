"""One admission: look up what the core needs, ask the core, turn its answer into a response."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from webhook.core import (
    ImageResult,
    InjectSettings,
    InvalidPod,
    Mutation,
    Plan,
    prepare,
)
from webhook.registry import ImageResolver
from webhook.registry_lookups import PullSecretReader, resolve_all
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics
from webhook.server.namespaces import NamespaceGate
from webhook.server.review import AdmissionRequest, encode_patch, respond

log = logging.getLogger("podinit.admission")


class Admitter:
    def __init__(
        self,
        *,
        settings: InjectSettings,
        metrics: Metrics,
        resolver: ImageResolver,
        pull_secrets: PullSecretReader | None = None,
        extra_docker_config: bytes | None = None,
        budget: float = 3.5,
        events: EventRecorder | None = None,
        namespaces: NamespaceGate | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.resolver = resolver
        self.pull_secrets = pull_secrets
        self.extra_docker_config = extra_docker_config
        self.budget = budget
        self.events = events
        # None (no Kubernetes API): every namespace is served; see namespaces.py.
        self.namespaces = namespaces

    async def admit(self, request: AdmissionRequest) -> dict[str, Any]:
        started = time.perf_counter()
        uid = request["uid"]
        try:
            response, outcome = await self._admit(request)
        except Exception:  # a bug must not break pod creation: admit unchanged, say so
            log.exception("admission failed", extra={"uid": uid})
            response, outcome = (
                respond(uid, warnings=["podinit: internal error, pod not wrapped"]),
                "error",
            )
        self.metrics.count_admission(outcome)
        self.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _admit(self, request: AdmissionRequest) -> tuple[dict[str, Any], str]:
        uid = request["uid"]
        if request["operation"] != "CREATE" or request.get("subResource"):
            return respond(uid), "ignored"
        namespace = request.get("namespace", "")
        pod = request.get("object")
        try:
            plan = prepare(pod, self.settings)
        except InvalidPod as error:
            log.info("invalid pod: %s", error, extra={"uid": uid})
            return respond(uid, warnings=[f"podinit: pod not wrapped: {error}"]), "invalid"
        found: dict[str, ImageResult] = {}
        if plan.images:
            if not await self._selected(namespace):
                # Not a pod the apiserver sends us: no pull secrets, lookups or Events for it.
                warning = "podinit: pod not wrapped: its namespace is not selected by podinit"
                return respond(uid, warnings=[warning]), "unselected"
            found = await self._look_up(plan, pod, namespace)
        mutation = plan.decide(found)
        self._count(mutation)
        self._log(uid, request, mutation)
        events = self.events
        # Events are side effects: none on a dry run, none outside the selected namespaces.
        failed = mutation.warnings or mutation.denied
        wanted = events is not None and failed and not request.get("dryRun")
        if wanted and events is not None and await self._selected(namespace):
            events.notice(namespace, pod, mutation)
        if mutation.denied:
            return respond(uid, denied=f"podinit: {mutation.denied}"), "denied"
        outcome = "mutated" if mutation.patch else "unchanged"
        return respond(uid, patch=encode_patch(mutation.patch), warnings=mutation.warnings), outcome

    async def _selected(self, namespace: str) -> bool:
        """Whether the installed webhook configuration selects `namespace` (namespaces.py):
        a set lookup, or a read at most once a second when the answer is no."""
        gate = self.namespaces
        return gate is None or gate.allows(namespace) or await gate.check(namespace)

    async def _look_up(self, plan: Plan, pod: Any, namespace: str) -> dict[str, ImageResult]:
        started = time.monotonic()
        secrets = await self._secrets(namespace, pod)
        return await resolve_all(
            self.resolver,
            plan.images,
            architecture=plan.architecture,
            pull_secrets=secrets,
            budget=self.budget - (time.monotonic() - started),
            namespace=namespace,  # its share of the fetches (registryLookupsPerNamespace)
        )

    async def _secrets(self, namespace: str, pod: Mapping[str, Any]) -> list[bytes]:
        payloads: list[bytes] = []
        reader = self.pull_secrets
        if reader is not None and namespace:
            known = reader.known_for_pod(namespace, pod)
            if known is None:
                try:
                    # Half the budget at most: credentials are useless without time to use them.
                    async with asyncio.timeout(self.budget / 2):
                        known = await reader.for_pod(namespace, pod)
                except TimeoutError:
                    log.warning("reading pull secrets in %s timed out", namespace)
            payloads = known or []
        if self.extra_docker_config:
            payloads.append(self.extra_docker_config)
        return payloads

    def _count(self, mutation: Mutation) -> None:
        for decision in mutation.decisions:
            self.metrics.count_container(decision.outcome.value, decision.code)

    def _log(self, uid: str, request: AdmissionRequest, mutation: Mutation) -> None:
        level = logging.INFO if mutation.warnings or mutation.denied else logging.DEBUG
        if not log.isEnabledFor(level):
            return
        pod = request.get("object") or {}
        metadata = pod.get("metadata") or {}
        log.log(
            level,
            "admitted",
            extra={
                "uid": uid,
                "namespace": request.get("namespace", ""),
                "pod": metadata.get("name") or metadata.get("generateName", ""),
                "decisions": {d.container: d.outcome.value for d in mutation.decisions},
                "podReason": mutation.pod_reason,
                "warnings": list(mutation.warnings),
            },
        )
