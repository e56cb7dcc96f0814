"""AdmissionReview (admission.k8s.io/v1) in and out: checked parsing and response building."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import orjson

API_VERSION = "admission.k8s.io/v1"
# kubectl prints admission warnings and the apiserver bounds their size: every warning podinit
# sends (the core's and the server's own) is cut here, the one place that knows the limit.
WARNING_LIMIT = 120


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict):
    uid: str
    resource: GroupVersionResource
    operation: str
    namespace: NotRequired[str]
    name: NotRequired[str]
    subResource: NotRequired[str]
    object: NotRequired[Any]
    dryRun: NotRequired[bool]


class Status(TypedDict):
    code: int
    message: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    patchType: NotRequired[str]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]
    status: NotRequired[Status]


class BadReview(ValueError):
    """The body is not an AdmissionReview podinit can answer; the message says why (HTTP 400)."""


def parse(body: bytes) -> AdmissionRequest:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadReview("body is not JSON") from None
    if not isinstance(review, dict):
        raise BadReview("body is not a JSON object")
    if review.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion must be {API_VERSION}, got {_short(review.get('apiVersion'))}")
    if review.get("kind") != "AdmissionReview":
        raise BadReview(f"kind must be AdmissionReview, got {_short(review.get('kind'))}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("request is missing")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("request.uid is missing")
    resource = request.get("resource")
    if not isinstance(resource, dict) or (resource.get("group"), resource.get("resource")) != (
        "",
        "pods",
    ):
        raise BadReview(f"only core pods are handled, got resource {_short(resource)}")
    if not isinstance(request.get("operation"), str):
        raise BadReview("request.operation is missing")
    if not isinstance(request.get("namespace", ""), str):
        raise BadReview("request.namespace must be a string")
    return request  # type: ignore[return-value]


def encode_patch(patch: Sequence[object]) -> str:
    """A JSON Patch as AdmissionResponse.patch carries it (base64 of the JSON); "" for none."""
    return base64.b64encode(orjson.dumps(patch)).decode() if patch else ""


def respond(
    uid: str,
    *,
    patch: str = "",
    warnings: Sequence[str] = (),
    denied: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview answering `uid`; `patch` as `encode_patch` gives it."""
    response: AdmissionResponse = {"uid": uid, "allowed": denied is None}
    if patch and denied is None:
        response["patchType"] = "JSONPatch"
        response["patch"] = patch
    if warnings:
        response["warnings"] = [_limit(w) for w in warnings]
    if denied is not None:
        response["status"] = {"code": 403, "message": denied}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _limit(text: str) -> str:
    return text if len(text) <= WARNING_LIMIT else text[: WARNING_LIMIT - 3] + "..."


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
