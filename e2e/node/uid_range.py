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
"""

from __future__ import annotations

from typing import Any

RANGE_ANNOTATION = "openshift.io/sa.scc.uid-range"
LABEL = "podinit-test.dev/scc"
NAME = "podinit-test-restricted-v2"
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


def namespace_metadata(name: str, first: int, size: int = 10000) -> dict[str, Any]:
    """A namespace the policies apply to, with OpenShift's range annotation and Pod Security
    'restricted' enforced (the default for OpenShift's user namespaces)."""
    return {
        "name": name,
        "annotations": {RANGE_ANNOTATION: f"{first}/{size}"},
        "labels": {LABEL: "restricted-v2", "pod-security.kubernetes.io/enforce": "restricted"},
    }


def policies() -> list[dict[str, Any]]:
    """The two policies and their bindings, to apply in this order."""
    return [
        _assigns_the_first_uid(),
        _binding("MutatingAdmissionPolicyBinding", NAME),
        _refuses_uids_outside(),
        {**_binding("ValidatingAdmissionPolicyBinding", NAME), "spec": {
            "policyName": NAME, "matchResources": _SELECTED, "validationActions": ["Deny"],
        }},
    ]  # fmt: skip


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


def _binding(kind: str, policy: str) -> dict[str, Any]:
    return {
        "apiVersion": _API,
        "kind": kind,
        "metadata": {"name": policy},
        "spec": {"policyName": policy, "matchResources": _SELECTED},
    }
