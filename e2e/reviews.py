"""The AdmissionReview the apiserver sends for a pod: what the server tests, the golden
webhook test, `make demo` and the webhook benchmark post to /mutate."""

from __future__ import annotations

import uuid
from typing import Any

# Who creates a Deployment's pods: the user the apiserver names in the review.
REPLICASET_CONTROLLER = {
    "username": "system:serviceaccount:kube-system:replicaset-controller",
    "uid": "5c8f0a1e-2b3d-4c5e-8f9a-0b1c2d3e4f5a",
    "groups": [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    ],
}


def pod_review(
    pod: object, *, operation: str = "CREATE", namespace: str = "default"
) -> dict[str, Any]:
    """Every field the apiserver sends for a pod, as a replica set controller's create."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "userInfo": REPLICASET_CONTROLLER,
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }
