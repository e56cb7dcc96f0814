"""The AdmissionReview the apiserver sends for a pod: what the server tests, the golden
webhook test and `make demo` post to /mutate."""

from __future__ import annotations

import uuid
from typing import Any


def pod_review(
    pod: object, *, operation: str = "CREATE", namespace: str = "default"
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "object": pod,
        },
    }
