"""Which pods and containers podinit leaves alone before reading any argv, and why.

A container that already runs an init is found from its argv, which may need the image's
config: known_inits.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.core import annotations as ann
from webhook.core.podview import ContainerSlot, PodView, mapping, mappings, strings
from webhook.core.settings import InjectSettings

OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"


def silent_skip(pod: PodView) -> str | None:
    """Pods that get no patch at all, not even a status annotation."""
    return silent_skip_annotations(pod.annotations)


def silent_skip_annotations(annotations: Mapping[str, str]) -> str | None:
    """`silent_skip` of a pod with these annotations: it reads nothing else."""
    if ann.MIRROR in annotations:
        return "mirror pod (static pods cannot be changed through the API)"
    if ann.is_false(annotations.get(ann.INJECT, "")):
        return f"opted out by {ann.INJECT}"
    return None


def pod_skip(pod: PodView, settings: InjectSettings) -> str | None:
    """Pods podinit must not wrap; the reason is recorded in the status annotation."""
    if pod.spec.get("hostPID") is True:
        return "hostPID: the container shares the node's PID namespace"
    if pod.spec.get("shareProcessNamespace") is True and settings.skip_shared_process_namespace:
        return "shareProcessNamespace: the pause container is PID 1 and reaps"
    if is_windows(pod):
        return "Windows pod"
    return None


def is_windows(pod: PodView) -> bool:
    if mapping(pod.spec.get("os"), "/spec/os").get("name") == "windows":
        return True
    if mapping(pod.spec.get("nodeSelector"), "/spec/nodeSelector").get(OS_LABEL) == "windows":
        return True
    if required_label_values(pod.spec, OS_LABEL) == {"windows"}:
        return True
    security = mapping(pod.spec.get("securityContext"), "/spec/securityContext")
    if security.get("windowsOptions"):
        return True
    for slot in pod.slots:
        context = slot.body.get("securityContext")
        if context is not None and mapping(context, f"{slot.pointer}/securityContext").get(
            "windowsOptions"
        ):
            return True
    return False


def required_label_values(spec: Mapping[str, Any], label: str) -> set[str] | None:
    """The values a required node affinity allows for `label`, or None when it does not restrict.

    Terms are ORed, so the label is restricted only when every term restricts it. Every term is
    checked whatever the label, so that `architecture` reads only what `prepare` checked.
    """
    where = "/spec/affinity"
    affinity = mapping(spec.get("affinity"), where)
    node = mapping(affinity.get("nodeAffinity"), where := f"{where}/nodeAffinity")
    where += "/requiredDuringSchedulingIgnoredDuringExecution"
    required = mapping(node.get("requiredDuringSchedulingIgnoredDuringExecution"), where)
    where += "/nodeSelectorTerms"
    terms = mappings(required.get("nodeSelectorTerms"), where)
    restrictions: list[set[str] | None] = []  # per term; all are checked before any answer
    for index, term in enumerate(terms):
        at = f"{where}/{index}/matchExpressions"
        values = [
            (expr, set(strings(expr.get("values"), f"{at}/{n}/values") or ()))
            for n, expr in enumerate(mappings(term.get("matchExpressions"), at))
        ]
        restricting = [
            v for expr, v in values if expr.get("key") == label and expr.get("operator") == "In"
        ]
        restrictions.append(set.intersection(*restricting) if restricting else None)
    restricted = [r for r in restrictions if r is not None]
    if not terms or len(restricted) < len(terms):
        return None
    return set[str]().union(*restricted)


def architecture(pod: PodView, settings: InjectSettings) -> str:
    """The CPU architecture the pod will run on, for picking a platform from an image index."""
    selected = mapping(pod.spec.get("nodeSelector"), "/spec/nodeSelector").get(ARCH_LABEL)
    if isinstance(selected, str):
        return selected
    allowed = required_label_values(pod.spec, ARCH_LABEL)
    if allowed and settings.default_architecture not in allowed:
        return sorted(allowed)[0]
    return settings.default_architecture


def candidates(
    pod: PodView, settings: InjectSettings, *, ours: frozenset[str]
) -> Iterator[tuple[ContainerSlot, str | None]]:
    """Every container podinit may wrap, with a skip reason when it must not.

    `ours` names containers podinit added itself (the copy container), which are never wrapped.
    """
    skipped = ann.skip_list(pod.annotations)
    wrap_init = settings.inject_init_containers or ann.is_true(
        pod.annotations.get(ann.INJECT_INIT_CONTAINERS, "")
    )
    for slot in pod.slots:
        if slot.name in ours:
            continue
        if slot.field == "initContainers" and not slot.is_sidecar and not wrap_init:
            continue
        if slot.name in skipped:
            yield slot, f"opted out by {ann.SKIP_CONTAINERS}"
        else:
            yield slot, None
