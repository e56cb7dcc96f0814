"""What /mutate answers to good and bad AdmissionReviews, over real TLS."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from tests.server.harness import Webhook, decoded_patch, review

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "web-", "namespace": "default"},
    "spec": {
        "containers": [{"name": "app", "image": "example/app:1", "command": ["sh", "-c", "app"]}]
    },
}


def test_a_create_is_answered_with_a_json_patch_that_applies(webhook: Webhook) -> None:
    body = review(POD)
    with webhook.client() as client:
        answer = client.post("/mutate", json=body).json()
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert response["uid"] == body["request"]["uid"] and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    pod = jsonpatch.apply_patch(copy.deepcopy(POD), decoded_patch(answer))
    assert pod["spec"]["containers"][0]["command"] == ["/podinit/podinit", "--", "sh", "-c", "app"]


def test_a_container_whose_image_cannot_be_looked_up_is_admitted_with_a_warning(
    webhook: Webhook,
) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"].append({"name": "nocmd", "image": "127.0.0.1:1/missing/image:1"})
    with webhook.client() as client:
        response = client.post("/mutate", json=review(pod)).json()["response"]
    assert response["allowed"] is True
    assert len(response["warnings"]) == 1
    assert response["warnings"][0].startswith("podinit: nocmd not wrapped: ")
    assert all(len(w) <= 120 for w in response["warnings"])


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "CONNECT"])
def test_other_operations_are_allowed_without_a_patch(webhook: Webhook, operation: str) -> None:
    with webhook.client() as client:
        response = client.post("/mutate", json=review(POD, operation=operation)).json()["response"]
    assert response["allowed"] is True and "patch" not in response


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"[]", "body is not a JSON object"),
        (
            b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}',
            "apiVersion must be",
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "kind must be AdmissionReview"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
            "request.uid",
        ),
    ],
)
def test_malformed_reviews_get_400_naming_the_problem(
    webhook: Webhook, body: bytes, message: str
) -> None:
    with webhook.client() as client:
        answer = client.post("/mutate", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_a_review_of_another_resource_gets_400(webhook: Webhook) -> None:
    body = review(POD)
    body["request"]["resource"] = {"group": "apps", "version": "v1", "resource": "deployments"}
    with webhook.client() as client:
        answer = client.post("/mutate", json=body)
    assert answer.status_code == 400 and "only core pods" in answer.json()["error"]


def test_a_body_over_3_mib_gets_400_even_when_streamed_without_a_length(webhook: Webhook) -> None:
    big = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'

    def chunks() -> Any:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with webhook.client() as client:
        declared = client.post("/mutate", content=big)
        streamed = client.post("/mutate", content=chunks())
    assert declared.status_code == streamed.status_code == 400
    assert "over 3145728 bytes" in streamed.json()["error"]


def test_a_pod_the_core_cannot_read_is_admitted_with_a_warning_not_an_error(
    webhook: Webhook,
) -> None:
    body = review({"spec": {"containers": "app"}})
    with webhook.client() as client:
        response = client.post("/mutate", json=body).json()["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == [
        "podinit: pod not wrapped: /spec/containers: must be a list, not str"
    ]


def test_health_readiness_and_metrics_are_served(webhook: Webhook) -> None:
    with webhook.client() as client:
        client.post("/mutate", json=review(POD))
        assert client.get("/healthz").text == "ok"
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
    assert 'podinit_admissions_total{outcome="mutated"}' in metrics
    assert 'podinit_containers_total{outcome="injected",reason="wrapped"}' in metrics
    assert "podinit_admission_duration_seconds_bucket" in metrics


def test_admissions_that_warn_are_logged_as_json_carrying_the_request_uid(webhook: Webhook) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"].append({"name": "nocmd", "image": "127.0.0.1:1/missing/image:1"})
    body = review(pod)
    with webhook.client() as client:
        client.post("/mutate", json=body)
    uids = [entry.get("uid") for entry in webhook.logs()]
    assert body["request"]["uid"] in uids
