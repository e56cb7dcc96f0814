"""Where the pod will run, as its spec says: a Windows pod is left alone, and a Linux pod's image
configs are read for the CPU architecture it is placed on (`plan.architecture`).

Required node affinity terms are ORed and the expressions of a term ANDed, as the scheduler
reads them: a label is restricted only when every term restricts it, and only an `In` on that
very label restricts it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.helpers import SETTINGS, container, pod, status
from tests.core.helpers import mutated as mutated_pod
from webhook.core import InjectSettings, InvalidPod, prepare

OS = "kubernetes.io/os"
ARCH = "kubernetes.io/arch"
ZONE = "topology.kubernetes.io/zone"


def _expr(key: str, *values: str, operator: str = "In") -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


def _affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    """Required node affinity with one term per list of match expressions."""
    required = {"nodeSelectorTerms": [{"matchExpressions": exprs} for exprs in terms]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


def _architecture(settings: InjectSettings = SETTINGS, **spec: Any) -> str:
    return prepare(pod(container(), **spec), settings).architecture


def _is_left_alone_as_windows(**spec: Any) -> bool:
    return status(mutated_pod(pod(container(command=["app"]), **spec))) == {
        "skipped": "Windows pod"
    }


# ------------------------------------------------------------------------- Windows


def test_a_pod_that_may_also_land_on_a_node_of_some_zone_is_not_a_windows_pod() -> None:
    """One term requires Windows, the other only a zone: the scheduler may pick a Linux node."""
    affinity = _affinity([_expr(OS, "windows")], [_expr(ZONE, "eu-west-1a")])
    assert not _is_left_alone_as_windows(affinity=affinity)


def test_a_pod_whose_every_term_requires_windows_is_a_windows_pod() -> None:
    affinity = _affinity([_expr(OS, "windows")], [_expr(OS, "windows"), _expr(ZONE, "a")])
    assert _is_left_alone_as_windows(affinity=affinity)


def test_a_zone_named_windows_does_not_make_a_windows_pod() -> None:
    assert not _is_left_alone_as_windows(affinity=_affinity([_expr(ZONE, "windows")]))


def test_not_in_linux_is_not_read_as_in_windows() -> None:
    affinity = _affinity([_expr(OS, "windows", operator="NotIn")])
    assert not _is_left_alone_as_windows(affinity=affinity)


def test_an_affinity_without_terms_does_not_make_a_windows_pod() -> None:
    assert not _is_left_alone_as_windows(affinity=_affinity())


def test_a_linux_node_selector_is_not_windows() -> None:
    assert not _is_left_alone_as_windows(nodeSelector={OS: "linux"})


def test_windows_options_set_to_nothing_do_not_make_a_windows_pod() -> None:
    app = container(command=["app"], securityContext={"windowsOptions": {}})
    result = mutated_pod(pod(app, securityContext={"windowsOptions": {}}))
    assert status(result)["containers"] == {"app": "injected"}


# ------------------------------------------------------------------------- architecture


def test_the_default_architecture_is_read_for_a_pod_that_says_nothing() -> None:
    assert _architecture() == "amd64"
    assert _architecture(InjectSettings(default_architecture="arm64")) == "arm64"


def test_a_node_selector_on_arm64_reads_the_arm64_image() -> None:
    assert _architecture(nodeSelector={ARCH: "arm64"}) == "arm64"


def test_the_node_selector_wins_over_the_affinity() -> None:
    spec = {"nodeSelector": {ARCH: "arm64"}, "affinity": _affinity([_expr(ARCH, "s390x")])}
    assert _architecture(**spec) == "arm64"


def test_an_affinity_that_requires_arm64_reads_the_arm64_image() -> None:
    assert _architecture(affinity=_affinity([_expr(ARCH, "arm64")])) == "arm64"


def test_an_affinity_that_allows_the_default_architecture_keeps_it() -> None:
    assert _architecture(affinity=_affinity([_expr(ARCH, "arm64", "amd64")])) == "amd64"
    affinity = _affinity([_expr(ARCH, "arm64")], [_expr(ARCH, "amd64")])
    assert _architecture(affinity=affinity) == "amd64"


def test_among_several_allowed_architectures_without_the_default_the_first_by_name() -> None:
    assert _architecture(affinity=_affinity([_expr(ARCH, "s390x", "arm64")])) == "arm64"
    affinity = _affinity([_expr(ARCH, "s390x")], [_expr(ARCH, "ppc64le")])
    assert _architecture(affinity=affinity) == "ppc64le"


def test_the_expressions_of_one_term_narrow_each_other() -> None:
    affinity = _affinity([_expr(ARCH, "amd64", "arm64"), _expr(ARCH, "arm64", "s390x")])
    assert _architecture(affinity=affinity) == "arm64"


@pytest.mark.parametrize(
    "affinity",
    [
        _affinity([_expr(ZONE, "a")]),
        _affinity([_expr(ARCH, "arm64")], [_expr(ZONE, "a")]),
        _affinity([_expr(ARCH, "arm64", operator="NotIn")]),
        _affinity([_expr(ARCH, "s390x", operator="NotIn")]),
        _affinity(),
    ],
    ids=["zone-only", "one-term-unrestricted", "not-in-arm64", "not-in-s390x", "no-terms"],
)
def test_what_does_not_restrict_the_architecture_keeps_the_default(
    affinity: dict[str, Any],
) -> None:
    assert _architecture(affinity=affinity) == "amd64"


@pytest.mark.parametrize(
    "spec, annotations",
    [
        ({}, {"podinit.dev/inject": "false"}),
        ({"hostPID": True}, {}),
        ({}, {"podinit.dev/grace": "soon"}),
    ],
    ids=["opted-out", "host-pid", "bad-option"],
)
def test_a_pod_decided_without_image_configs_still_names_its_architecture(
    spec: dict[str, Any], annotations: dict[str, str]
) -> None:
    plan = prepare(pod(container(), annotations=annotations, **spec), SETTINGS)
    assert plan.images == frozenset()
    assert plan.architecture == "amd64"


REQUIRED = "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"os": "linux"}, "/spec/os"),
        ({"nodeSelector": ["linux"]}, "/spec/nodeSelector"),
        ({"affinity": ["node"]}, "/spec/affinity"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": 1}}},
         REQUIRED),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": {"a": 1}}}}}, f"{REQUIRED}/nodeSelectorTerms"),
        ({"affinity": _affinity()
          | {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
              "nodeSelectorTerms": [{"matchExpressions": "zone"}]}}}},
         f"{REQUIRED}/nodeSelectorTerms/0/matchExpressions"),
    ],
)  # fmt: skip
def test_a_malformed_placement_is_refused_naming_the_field(
    spec: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidPod) as error:
        prepare(pod(container(command=["app"]), **spec), SETTINGS)
    assert error.value.where == where
