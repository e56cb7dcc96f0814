"""Admissions that need the image's ENTRYPOINT/CMD, against a real registry and a faulty one."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from e2e.pki import CertAuthority
from e2e.registry import Pusher, Registry
from tests.registry.registry_harness import (
    PASSWORD,
    USER,
    FaultServer,
    running,
    start_basic_auth_registry,
    start_or_skip,
)
from tests.server.harness import Certs, Webhook, decoded_patch, review, run_webhook

PUSHED: dict[str, str] = {}  # repository -> digest of its 1.0 tag, as pushed


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    registry = start_or_skip(tmp_path_factory.mktemp("registry"))
    pusher = Pusher(registry)
    api = pusher.image(
        "shop/api", "1.0", entrypoint=["/bin/sh", "-c", "exec api --port=$PORT"], cmd=None
    )
    PUSHED["shop/api"] = api.digest
    pusher.image("shop/burst", "1.0", entrypoint=["/burst"], cmd=None)
    pusher.image(
        "shop/tini", "1.0", entrypoint=["/usr/bin/tini", "--"], cmd=["worker"], docker=True
    )
    amd = pusher.image("shop/multi", None, entrypoint=["/amd64-entry"], cmd=["run"])
    arm = pusher.image(
        "shop/multi", None, entrypoint=["/arm64-entry"], cmd=["run"], arch="arm64", variant="v8"
    )
    multi = pusher.index(
        "shop/multi",
        "1.0",
        [
            (amd, {"os": "linux", "architecture": "amd64"}),
            (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ],
    )
    PUSHED["shop/multi"] = multi.digest
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer()
    with running(server):
        yield server


@pytest.fixture(scope="module")
def lookup_webhook(
    certs: Certs, registry: Registry, faults: FaultServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    env = {
        "PODINIT_INSECURE_REGISTRIES": json.dumps([registry.host, faults.host]),
        "PODINIT_TIMEOUT_SECONDS": "2",
    }
    with run_webhook(certs, tmp_path_factory.mktemp("lookups"), env=env) as webhook:
        yield webhook


def pod(*images: str, **spec: Any) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {"metadata": {"name": "p"}, "spec": {"containers": containers, **spec}}


def admit(webhook: Webhook, body: dict[str, Any]) -> dict[str, Any]:
    with webhook.client() as client:
        return client.post("/mutate", json=review(body)).json()  # type: ignore[no-any-return]


def test_a_container_without_command_gets_the_entrypoint_from_the_registry(
    lookup_webhook: Webhook, registry: Registry
) -> None:
    original = pod(f"{registry.host}/shop/api:1.0")
    answer = admit(lookup_webhook, original)
    result = jsonpatch.apply_patch(copy.deepcopy(original), decoded_patch(answer))
    assert result["spec"]["containers"][0]["command"] == [
        "/podinit/podinit",
        "--",
        "/bin/sh",
        "-c",
        "exec api --port=$$PORT",
    ]


@pytest.mark.parametrize("repository", ["shop/api", "shop/multi"])
def test_a_container_whose_argv_was_read_by_tag_is_pinned_to_the_digest_that_was_read(
    lookup_webhook: Webhook, registry: Registry, repository: str
) -> None:
    image = f"{registry.host}/{repository}:1.0"
    original = pod(image)
    result = jsonpatch.apply_patch(
        copy.deepcopy(original), decoded_patch(admit(lookup_webhook, original))
    )
    pinned = f"{image}@{PUSHED[repository]}"
    assert result["spec"]["containers"][0]["image"] == pinned
    status = json.loads(result["metadata"]["annotations"]["podinit.dev/status"])
    assert status["fromImage"] == {"c0": {"image": pinned, "cmd": True}}


def test_an_image_whose_entrypoint_is_tini_is_not_wrapped(
    lookup_webhook: Webhook, registry: Registry
) -> None:
    original = pod(f"{registry.host}/shop/tini:1.0")
    answer = admit(lookup_webhook, original)
    result = jsonpatch.apply_patch(copy.deepcopy(original), decoded_patch(answer))
    assert "command" not in result["spec"]["containers"][0]
    status = json.loads(result["metadata"]["annotations"]["podinit.dev/status"])
    assert status["containers"] == {"c0": "skipped: already runs an init (tini)"}


def test_the_platform_comes_from_the_pods_arch_node_selector(
    lookup_webhook: Webhook, registry: Registry
) -> None:
    image = f"{registry.host}/shop/multi:1.0"
    for arch, entry in (("amd64", "/amd64-entry"), ("arm64", "/arm64-entry")):
        original = pod(image, nodeSelector={"kubernetes.io/arch": arch})
        result = jsonpatch.apply_patch(
            copy.deepcopy(original), decoded_patch(admit(lookup_webhook, original))
        )
        assert result["spec"]["containers"][0]["command"][2:] == [entry]
        status = json.loads(result["metadata"]["annotations"]["podinit.dev/status"])
        chosen = "linux/amd64" if arch == "amd64" else "linux/arm64/v8"
        assert status["notes"] == [
            f"c0: ENTRYPOINT/CMD differ by platform; used {chosen}, other on "
            + ("linux/arm64/v8" if arch == "amd64" else "linux/amd64")
        ]


@pytest.mark.parametrize(
    "repository", ["hang/app", "drip/app", "err500/app", "garbage/app", "deny/app", "missing/app"]
)
def test_every_registry_fault_is_answered_in_time_with_a_warning_and_the_pod_admitted(
    lookup_webhook: Webhook, faults: FaultServer, registry: Registry, repository: str
) -> None:
    original = pod(f"{faults.host}/{repository}:1", f"{registry.host}/shop/api:1.0")
    started = time.monotonic()
    answer = admit(lookup_webhook, original)
    elapsed = time.monotonic() - started
    response = answer["response"]
    assert response["allowed"] is True
    assert len(response["warnings"]) == 1 and response["warnings"][0].startswith(
        "podinit: c0 not wrapped: "
    )
    result = jsonpatch.apply_patch(copy.deepcopy(original), decoded_patch(answer))
    assert result["spec"]["containers"][1]["command"][0] == "/podinit/podinit"
    assert elapsed < 2 + 5, f"answered after {elapsed:.1f}s, over the 2s webhook timeout plus slack"


def test_deny_mode_rejects_the_pod_naming_the_container(
    certs: Certs, faults: FaultServer, tmp_path: Path
) -> None:
    env = {
        "PODINIT_INSECURE_REGISTRIES": json.dumps([faults.host]),
        "PODINIT_ON_LOOKUP_FAILURE": "deny",
    }
    with run_webhook(certs, tmp_path, env=env) as webhook:
        response = admit(webhook, pod(f"{faults.host}/missing/app:1"))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"].startswith("podinit: container c0: ")


def metric(webhook: Webhook, name: str) -> float:
    with webhook.client() as client:
        lines = client.get("/metrics").text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + " "))


def test_concurrent_admissions_of_one_uncached_image_share_one_fetch_and_metrics_say_so(
    lookup_webhook: Webhook, registry: Registry
) -> None:
    names = ("registry_fetches", "registry_joined", "image_cache_hits")
    before = {n: metric(lookup_webhook, f"podinit_{n}_total") for n in names}
    body = pod(f"{registry.host}/shop/burst:1.0")
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: admit(lookup_webhook, body), range(20)))
    assert [a["response"].get("warnings") for a in answers] == [None] * 20
    after = {n: metric(lookup_webhook, f"podinit_{n}_total") - before[n] for n in names}
    # One fetch; every other admission either joined it or came late enough to hit the cache.
    assert after["registry_fetches"] == 1
    assert after["registry_joined"] + after["image_cache_hits"] == 19, (before, after)


def test_the_docker_config_file_lets_the_webhook_read_a_private_image(
    certs: Certs, tmp_path: Path
) -> None:
    pki = CertAuthority(tmp_path / "pki", "registry")
    private, pusher = start_basic_auth_registry(tmp_path / "registry", pki)
    try:
        pusher.image("team/api", "1.0", entrypoint=["/api"], cmd=["--listen=:8080"])
        pusher.close()
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        docker_config = tmp_path / "config.json"
        docker_config.write_text(json.dumps({"auths": {private.host: {"auth": auth}}}))
        env = {
            "PODINIT_REGISTRY_CA_FILE": str(pki.cert),
            "PODINIT_DOCKER_CONFIG_FILE": str(docker_config),
        }
        pod = {"spec": {"containers": [{"name": "api", "image": f"{private.host}/team/api:1.0"}]}}
        with run_webhook(certs, tmp_path, env=env) as webhook, webhook.client() as client:
            answer = client.post("/mutate", json=review(pod)).json()
    finally:
        private.stop()
    assert "warnings" not in answer["response"]
    api = jsonpatch.apply_patch(copy.deepcopy(pod), decoded_patch(answer))["spec"]["containers"][0]
    assert (api["command"], api["args"]) == (["/podinit/podinit", "--", "/api"], ["--listen=:8080"])
