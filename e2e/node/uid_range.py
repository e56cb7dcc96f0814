"""OpenShift's restricted-v2 uid rule, reproduced with Kubernetes' own admission policies.

On OpenShift every namespace carries a uid range (annotation ``openshift.io/sa.scc.uid-range``,
``FIRST/SIZE``); the restricted-v2 SCC (``MustRunAsRange``) gives a pod that names no uid the
first one of the range, and refuses a pod any of whose containers asks for a uid outside it:
``runAsUser: Invalid value: 65532: must be in the ranges: [1000680000, 1000689999]``.

Here a MutatingAdmissionPolicy (GA in 1.36) sets the pod's ``securityContext.runAsUser`` when it
names none; it runs before the mutating webhooks, as the SCC's defaulting does, so a container a
webhook adds without a uid inherits the pod's. A ValidatingAdmissionPolicy then refuses, after
every mutation, a pod or container whose uid is outside the range. Both apply to namespaces
labelled ``LABEL=restricted-v2``. (OpenShift also sets an fsGroup from another range; the tests
leave it out, so nothing they show depends on one.)

The SCC may give the uid to each container instead of the pod. Namespaces labelled
``LABEL=PER_CONTAINER`` get that variant: a second pair of policies sets ``runAsUser`` on every
container and init container that names none, and refuses a container left without one (its
own or the pod's). A container a webhook adds after the first pass gets its uid only because
the policy runs again (``reinvocationPolicy: IfNeeded``), as Kubernetes re-runs its built-in
mutating plugins (OpenShift's SCC among them) after a webhook changed the object.
"""

from __future__ import annotations

from typing import Any

RANGE_ANNOTATION = "openshift.io/sa.scc.uid-range"
LABEL = "podinit-test.dev/scc"
NAME = "podinit-test-restricted-v2"
PER_CONTAINER = "restricted-v2-per-container"  # LABEL's value for the per-container variant
_API = "admissionregistration.k8s.io/v1"
_PODS = {
    "resourceRules": [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
    ]
}
_SELECTED = {"namespaceSelector": {"matchLabels": {LABEL: "restricted-v2"}}}
_RANGE = [
    {
        "name": "range",
        "expression": f"namespaceObject.metadata.annotations['{RANGE_ANNOTATION}'].split('/')",
    },
    {"name": "first", "expression": "int(variables.range[0])"},
    {"name": "last", "expression": "variables.first + int(variables.range[1]) - 1"},
]
# Every uid the pod asks for: the pod's own and each container's.
_UIDS = """
  (has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser)
    ? [object.spec.securityContext.runAsUser] : [])
  + (object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : []))
    .filter(c, has(c.securityContext) && has(c.securityContext.runAsUser))
    .map(c, c.securityContext.runAsUser)
"""


def namespace_metadata(
    name: str, first: int, size: int = 10000, *, per_container: bool = False
) -> dict[str, Any]:
    """A namespace the policies apply to, with OpenShift's range annotation and Pod Security
    'restricted' enforced (the default for OpenShift's user namespaces)."""
    variant = PER_CONTAINER if per_container else "restricted-v2"
    return {
        "name": name,
        "annotations": {RANGE_ANNOTATION: f"{first}/{size}"},
        "labels": {LABEL: variant, "pod-security.kubernetes.io/enforce": "restricted"},
    }


def policies() -> list[dict[str, Any]]:
    """Both variants' policies and bindings, to apply in this order; ``names()`` to delete."""
    per_container = {"namespaceSelector": {"matchLabels": {LABEL: PER_CONTAINER}}}
    return [
        _assigns_the_first_uid(),
        _binding("MutatingAdmissionPolicyBinding", NAME, _SELECTED),
        _refuses_uids_outside(),
        _binding("ValidatingAdmissionPolicyBinding", NAME, _SELECTED),
        _assigns_each_container_the_first_uid(),
        _binding("MutatingAdmissionPolicyBinding", NAME + "-per-container", per_container),
        _refuses_containers_outside_or_without_uid(),
        _binding("ValidatingAdmissionPolicyBinding", NAME + "-per-container", per_container),
    ]


def names() -> list[str]:
    return [NAME, NAME + "-per-container"]


def _assigns_the_first_uid() -> dict[str, Any]:
    """A pod that names no uid runs as the range's first, as restricted-v2 gives it."""
    return {
        "apiVersion": _API,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": _PODS,
            "matchConditions": [
                {
                    "name": "names-no-uid",
                    "expression": "!has(object.spec.securityContext)"
                    " || !has(object.spec.securityContext.runAsUser)",
                }
            ],
            "variables": _RANGE,
            "reinvocationPolicy": "Never",
            "mutations": [
                {
                    "patchType": "ApplyConfiguration",
                    "applyConfiguration": {
                        "expression": "Object{spec: Object.spec{securityContext:"
                        " Object.spec.securityContext{runAsUser: variables.first}}}"
                    },
                }
            ],
        },
    }


def _refuses_uids_outside() -> dict[str, Any]:
    """Any pod or container uid outside the range is refused, with OpenShift's message."""
    return {
        "apiVersion": _API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": _PODS,
            "variables": [
                *_RANGE,
                {
                    "name": "outside",
                    "expression": f"({_UIDS}).filter(u, u < variables.first || u > variables.last)",
                },
            ],
            "validations": [
                {
                    "expression": "size(variables.outside) == 0",
                    "messageExpression": "'runAsUser: Invalid value: '"
                    " + string(variables.outside[0]) + ': must be in the ranges: ['"
                    " + string(variables.first) + ', ' + string(variables.last) + ']'",
                    "reason": "Forbidden",
                }
            ],
        },
    }


def _assigns_each_container_the_first_uid() -> dict[str, Any]:
    """Every container and init container that names no uid (of a pod that names none) gets
    the range's first; run again whenever a later mutation changed the pod."""
    unnamed = "{}.filter(c, !has(c.securityContext) || !has(c.securityContext.runAsUser))"
    init = "(has(object.spec.initContainers) ? object.spec.initContainers : [])"

    def assign(field: str) -> dict[str, Any]:
        item = f"Object.spec.{field}"
        return {
            "patchType": "ApplyConfiguration",
            "applyConfiguration": {
                "expression": f"Object{{spec: Object.spec{{{field}: variables.{field}.map(n,"
                f" {item}{{name: n, securityContext: {item}.securityContext{{"
                "runAsUser: variables.first}})}}"
            },
        }

    return {
        "apiVersion": _API,
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": NAME + "-per-container"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": _PODS,
            "matchConditions": [
                {
                    "name": "pod-names-no-uid",
                    "expression": "!has(object.spec.securityContext)"
                    " || !has(object.spec.securityContext.runAsUser)",
                }
            ],
            "variables": [
                *_RANGE,
                {
                    "name": "containers",
                    "expression": unnamed.format("object.spec.containers") + ".map(c, c.name)",
                },
                {"name": "initContainers", "expression": unnamed.format(init) + ".map(c, c.name)"},
            ],
            "reinvocationPolicy": "IfNeeded",
            "mutations": [assign("containers"), assign("initContainers")],
        },
    }


def _refuses_containers_outside_or_without_uid() -> dict[str, Any]:
    """A container with no uid, its own or the pod's, or one outside the range, is refused."""
    refusal = _refuses_uids_outside()
    refusal["metadata"]["name"] = NAME + "-per-container"
    pod_uid = "has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser)"
    containers = (
        "object.spec.containers"
        " + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
    )
    refusal["spec"]["variables"].append(
        {
            "name": "without",
            "expression": f"{pod_uid} ? [] : ({containers})"
            ".filter(c, !has(c.securityContext) || !has(c.securityContext.runAsUser))"
            ".map(c, c.name)",
        }
    )
    refusal["spec"]["validations"].insert(
        0,
        {
            "expression": "size(variables.without) == 0",
            "messageExpression": "'runAsUser: Required value: container '"
            " + variables.without[0] + ' has no uid'",
            "reason": "Forbidden",
        },
    )
    return refusal


def _binding(kind: str, policy: str, selected: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": policy, "matchResources": selected}
    if kind.startswith("Validating"):
        spec["validationActions"] = ["Deny"]
    return {"apiVersion": _API, "kind": kind, "metadata": {"name": policy}, "spec": spec}
