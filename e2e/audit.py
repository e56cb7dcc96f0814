"""The apiserver's audit log, read back: which mutating webhooks each pod creation
called and which of them patched it.

``POLICY`` is the audit policy the control plane runs with (pod creations at
``Request`` level, so their admission annotations are recorded); ``pod_admissions``
turns the log's events into one ``PodAdmission`` per pod creation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # pod creations with their admission annotations (which webhook mutated what)
  - level: Request
    resources: [{group: "", resources: ["pods"]}]
    verbs: ["create"]
  - level: Metadata
    resources:
      - {group: "admissionregistration.k8s.io"}
      - {group: "apps"}
    verbs: ["create", "update", "patch", "delete"]
  # evictions (the reconciler's), counted by evictions()
  - level: Metadata
    resources: [{group: "", resources: ["pods/eviction"]}]
    verbs: ["create"]
  - level: None
"""


_MUTATION_ANNOTATION = "mutation.webhook.admission.k8s.io"
_PATCH_ANNOTATION = "patch.webhook.admission.k8s.io"


def _round_index(entry: dict[str, Any]) -> tuple[int, int]:
    return (entry["round"], entry["index"])


@dataclass(frozen=True)
class PodAdmission:
    """One pod creation as the apiserver's audit log recorded it.

    ``mutations``: ``{"round", "index", "configuration", "webhook", "mutated"}`` per
    mutating webhook called; ``patches``: ``{"round", "index", "configuration",
    "webhook", "patch", "patchType"}`` per webhook that returned a patch.
    """

    namespace: str
    user: str
    dry_run: bool
    status: int
    mutations: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    annotations: dict[str, str]

    def called(self, configuration: str) -> bool:
        return any(m["configuration"] == configuration for m in self.mutations)

    def mutated_by(self, configuration: str) -> bool:
        return any(m["configuration"] == configuration and m["mutated"] for m in self.mutations)


def evictions(events: Iterable[dict[str, Any]], namespace: str) -> list[str]:
    """The pods of ``namespace`` evicted through the Eviction API (answered 201), by name, in
    log order."""
    return [
        e["objectRef"]["name"]
        for e in events
        if e.get("stage") == "ResponseComplete"
        and e["objectRef"].get("subresource") == "eviction"
        and e["objectRef"].get("namespace") == namespace
        and e.get("responseStatus", {}).get("code") == 201
    ]


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines audit log (``--audit-log-format=json``); none if the
    file does not exist yet."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pod_admissions(
    events: Iterable[dict[str, Any]], namespace: str | None = None
) -> list[PodAdmission]:
    """Pod creations among ``events`` (dry runs included), in log order, with what each
    mutating webhook did. A webhook that was not called (namespace/object selector or
    matchConditions not matching, or no configuration) has no entry in ``mutations``; one
    that answered without a patch has ``mutated: False``; reinvocations show up as round 1."""
    result = []
    for event in events:
        ref = event.get("objectRef", {})
        if ref.get("resource") != "pods" or ref.get("subresource") or event["verb"] != "create":
            continue
        if event.get("stage") != "ResponseComplete":
            continue
        if namespace is not None and ref.get("namespace") != namespace:
            continue
        annotations: dict[str, str] = event.get("annotations") or {}
        mutations: list[dict[str, Any]] = []
        patches: list[dict[str, Any]] = []
        for key, value in annotations.items():
            prefix, _, where = key.partition("/")
            if prefix not in (_MUTATION_ANNOTATION, _PATCH_ANNOTATION):
                continue
            _, r, _, i = where.split("_")  # round_<r>_index_<i>
            entry = {"round": int(r), "index": int(i), **json.loads(value)}
            (mutations if prefix == _MUTATION_ANNOTATION else patches).append(entry)
        result.append(
            PodAdmission(
                namespace=ref.get("namespace", ""),
                user=event["user"]["username"],
                dry_run="dryRun=" in event.get("requestURI", ""),
                status=int(event.get("responseStatus", {}).get("code", 0)),
                mutations=sorted(mutations, key=_round_index),
                patches=sorted(patches, key=_round_index),
                annotations=annotations,
            )
        )
    return result
