"""The AdmissionReview wire format (webhook/server/review.py) as the apiserver reads it: what
`parse` refuses and why, and the answers `respond` builds. test_review_handling.py sends the
MALFORMED bodies to a served `podinit serve` over TLS."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.server.harness import review
from webhook.server.review import BadReview, encode_patch, parse, respond


def reviewing(request: object) -> bytes:
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


PODS = {"group": "", "resource": "pods"}
MALFORMED: list[tuple[bytes, str]] = [
    (b"{not json", "body is not JSON"),
    (b"[]", "body is not a JSON object"),
    (
        b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}',
        "apiVersion must be admission.k8s.io/v1, got 'admission.k8s.io/v1beta1'",
    ),
    (b'{"kind": "AdmissionReview"}', "apiVersion must be admission.k8s.io/v1, got None"),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}',
        "kind must be AdmissionReview, got 'Pod'",
    ),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
    (reviewing([]), "request is missing"),
    (reviewing({}), "request.uid is missing"),
    (reviewing({"uid": ""}), "request.uid is missing"),
    (reviewing({"uid": 7}), "request.uid is missing"),
    (
        reviewing({"uid": "u", "resource": {"group": "apps", "resource": "pods"}}),
        "only core pods are handled, got resource {'group': 'apps', 'resource': 'pods'}",
    ),
    (
        reviewing({"uid": "u", "resource": {"group": "", "resource": "services"}}),
        "only core pods are handled, got resource {'group': '', 'resource': 'services'}",
    ),
    (
        reviewing({"uid": "u", "resource": "pods"}),
        "only core pods are handled, got resource 'pods'",
    ),
    (reviewing({"uid": "u", "resource": PODS}), "request.operation is missing"),
    (
        reviewing({"uid": "u", "resource": PODS, "operation": "CREATE", "namespace": ["a"]}),
        "request.namespace must be a string",
    ),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_a_malformed_review_is_refused_with_a_message_naming_the_problem(
    body: bytes, message: str
) -> None:
    with pytest.raises(BadReview) as refused:
        parse(body)
    assert str(refused.value) == message


def test_a_long_value_is_quoted_cut_to_60_characters() -> None:
    body = json.dumps({"apiVersion": "x" * 200, "kind": "AdmissionReview"}).encode()
    with pytest.raises(BadReview) as refused:
        parse(body)
    quoted = str(refused.value).removeprefix("apiVersion must be admission.k8s.io/v1, got ")
    assert quoted == "'" + "x" * 56 + "..." and len(quoted) == 60


def test_a_pod_review_from_the_apiserver_is_read_as_sent() -> None:
    sent = review({"metadata": {"name": "p"}, "spec": {}}, namespace="shop")
    request = parse(json.dumps(sent).encode())
    assert request == sent["request"]
    without_namespace = review({"spec": {}})
    del without_namespace["request"]["namespace"]
    assert "namespace" not in parse(json.dumps(without_namespace).encode())


def decoded(patch: str) -> Any:
    return json.loads(base64.b64decode(patch))


def test_a_patch_is_sent_as_base64_json_and_none_as_nothing() -> None:
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "é"}}]
    assert decoded(encode_patch(ops)) == ops
    assert encode_patch([]) == ""


def test_an_allowed_answer_carries_the_patch_and_the_warnings() -> None:
    patch = encode_patch([{"op": "remove", "path": "/spec/x"}])
    answer = respond("u1", patch=patch, warnings=["one", "two"])
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "u1",
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": patch,
            "warnings": ["one", "two"],
        },
    }


def test_an_answer_without_patch_or_warnings_only_allows() -> None:
    assert respond("u2")["response"] == {"uid": "u2", "allowed": True}


def test_a_denial_carries_403_and_its_reason_and_never_a_patch() -> None:
    patch = encode_patch([{"op": "remove", "path": "/spec/x"}])
    response = respond("u3", patch=patch, warnings=["w"], denied="podinit: no")["response"]
    assert response == {
        "uid": "u3",
        "allowed": False,
        "warnings": ["w"],
        "status": {"code": 403, "message": "podinit: no"},
    }


def test_each_warning_is_cut_to_120_characters_the_cut_ending_in_dots() -> None:
    exact, long = "a" * 120, "b" * 121
    warnings = respond("u4", warnings=[exact, long])["response"]["warnings"]
    assert warnings == [exact, "b" * 117 + "..."]
