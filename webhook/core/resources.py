"""The copy container's CPU limit: large enough that its start is not throttled, never
more than the pod already claims.

A CPU limit of a few millicores throttles the runtime's own start-up work inside the
container (runc's init runs in the container's cgroup): with 10m, copy mode was the
slowest row of `make bench-cluster` by seconds. An init container's limit counts towards the pod's
effective limit as the largest of the init containers, so taking the largest limit of the
pod's other containers changes nothing ResourceQuota charges. A pod without CPU limits
gets none on the copy container either (a LimitRange default, if any, applies to it as to
the others).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

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


def cpu_cores(quantity: object) -> Decimal | None:
    """A CPU quantity in cores (``"500m"`` -> 0.5); None if it is not one."""
    if isinstance(quantity, bool) or not isinstance(quantity, str | int | float):
        return None
    match = _QUANTITY.fullmatch(str(quantity).strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _FACTORS[match.group(2)]
    except InvalidOperation:
        return None


def copy_cpu_limit(containers: Iterable[Mapping[str, Any]], request: str) -> str | None:
    """The largest CPU limit among ``containers`` as written there, but at least
    ``request``; None when none of them has a CPU limit."""
    best: tuple[Decimal, str] | None = None
    for container in containers:
        resources = container.get("resources")
        limits = resources.get("limits") if isinstance(resources, Mapping) else None
        value = limits.get("cpu") if isinstance(limits, Mapping) else None
        cores = cpu_cores(value)
        if cores is not None and (best is None or cores > best[0]):
            best = (cores, str(value))
    if best is None:
        return None
    floor = cpu_cores(request)
    return request if floor is not None and best[0] < floor else best[1]
