"""The copy container's resources: they change nothing the scheduler, quota, LimitRanger or
kubelet judge.

By default the copy container mirrors the CPU, memory and ephemeral-storage requests and
limits of one of the pod's own app containers, the smallest. That keeps everything those
components compute the same:

- An init container's request and limit count toward the pod's effective ones only as the
  largest of the init containers, against the sum of the app containers; one app container's
  values never exceed that sum, so the scheduler and ResourceQuota charge what they did.
- LimitRange's per-container rules (min, max, maxLimitRequestRatio) hold for the copy exactly
  as they hold for the container it mirrors, and what LimitRanger defaults it fills in the
  same way (it re-runs after webhooks change a pod).
- The QoS class stays: in a Guaranteed pod every container has requests equal to limits, so
  the mirror has too; in a BestEffort pod none has any, nor has the mirror.

Extended resources and hugepages are not mirrored: a device or hugepages claimed by an init
container is held for it. `copyContainerResources` replaces the mirror with fixed values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from webhook.core.settings import Resources

MIRRORED = ("cpu", "memory", "ephemeral-storage")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_UNBOUNDED = Decimal("Infinity")
# Which container is the smallest: memory first (what an OOM kill judges), then CPU.
_ORDER = (("limits", "memory"), ("requests", "memory"), ("limits", "cpu"), ("requests", "cpu"))


def quantity(value: object) -> Decimal | None:
    """A Kubernetes quantity as a number (``"500m"`` -> 0.5, ``"1Ki"`` -> 1024); None if it is
    not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return _parsed(str(value))


@functools.lru_cache(maxsize=1024)  # a workload's pods repeat the same few quantities
def _parsed(text: str) -> Decimal | None:
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _FACTORS[match.group(2)]
    except InvalidOperation:
        return None


def copy_resources(
    app_containers: Iterable[Mapping[str, Any]], fixed: Resources | None
) -> dict[str, dict[str, Any]]:
    """The copy container's `resources`: `fixed` when set, else the mirrored part of the
    smallest app container's ({} when it has none)."""
    if fixed is not None:
        return fixed.as_spec()
    mirrored = [_mirrored(container) for container in app_containers]
    distinct = [m for index, m in enumerate(mirrored) if m not in mirrored[:index]]
    if len(distinct) <= 1:  # one container, or all alike: nothing to compare
        return distinct[0] if distinct else {}
    return min(distinct, key=_size)


def _mirrored(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for part in ("requests", "limits"):
        values = resources.get(part)
        if isinstance(values, Mapping):
            kept = {name: values[name] for name in MIRRORED if name in values}
            if kept:
                found[part] = kept
    return found


def _size(resources: Mapping[str, Mapping[str, Any]]) -> tuple[Decimal, ...]:
    """Smaller is a smaller claim; what is not set (or not a quantity) counts as unbounded."""
    sizes = (quantity(resources.get(part, {}).get(name)) for part, name in _ORDER)
    return tuple(_UNBOUNDED if size is None else size for size in sizes)
