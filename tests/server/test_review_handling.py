"""What /mutate answers to good and bad AdmissionReviews, over real TLS."""

from __future__ import annotations

import copy
import socket
import ssl
from typing import Any

import jsonpatch
import pytest

from tests.server.harness import Webhook, decoded_patch, review
from tests.server.test_review_wire import MALFORMED

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


@pytest.mark.parametrize(("body", "message"), MALFORMED)
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
        assert client.post("/mutate", json=body).json()["response"]["warnings"]
    logged = [entry for entry in webhook.logs() if entry.get("uid") == body["request"]["uid"]]
    assert [(entry["level"], entry["msg"]) for entry in logged] == [("info", "admitted")]


def test_other_methods_on_mutate_get_405_naming_post(webhook: Webhook) -> None:
    with webhook.client() as client:
        answer = client.get("/mutate")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "use POST" in answer.json()["error"]


def test_answers_carry_their_length_instead_of_chunked_encoding(webhook: Webhook) -> None:
    with webhook.client() as client:
        answer = client.post("/mutate", json=review(POD))
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert "transfer-encoding" not in answer.headers


def test_a_client_that_hangs_up_mid_body_leaves_the_server_answering(webhook: Webhook) -> None:
    host, port = webhook.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(webhook.ca_file))
    with (
        socket.create_connection((host, int(port))) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(
            b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n" + b'{"apiVersion": "admission.k8s.io/v1"'
        )
    with webhook.client() as client:
        assert client.post("/mutate", json=review(POD)).status_code == 200
    assert webhook.process.poll() is None
    assert not [e for e in webhook.logs() if e.get("level") == "error"]


def _samples(text: str) -> dict[str, float]:
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_count_every_admission_and_container_exactly(webhook: Webhook) -> None:
    mutated = 'podinit_admissions_total{outcome="mutated"}'
    wrapped = 'podinit_containers_total{outcome="injected",reason="wrapped"}'
    count = "podinit_admission_duration_seconds_count"
    every = 'podinit_admission_duration_seconds_bucket{le="+Inf"}'
    with webhook.client() as client:
        before = _samples(client.get("/metrics").text)
        for _ in range(5):
            client.post("/mutate", json=review(POD))
        client.post("/mutate", content=b"{not json")
        after = _samples(client.get("/metrics").text)
    assert after[mutated] - before.get(mutated, 0) == 5
    assert after[wrapped] - before.get(wrapped, 0) == 5
    assert after[count] - before.get(count, 0) == 5  # bad requests are not admissions timed
    assert after[every] == after[count]
    bad = 'podinit_admissions_total{outcome="bad-request"}'
    assert after[bad] - before.get(bad, 0) == 1
    buckets = [v for k, v in after.items() if k.startswith("podinit_admission_duration_seconds_b")]
    assert buckets == sorted(buckets)  # cumulative
