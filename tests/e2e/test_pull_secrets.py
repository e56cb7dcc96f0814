"""Image lookups through the real apiserver with the pod's pull secret and its ServiceAccount's,
against a real registry that needs them (TLS + htpasswd)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.aio import client as kube

from e2e.controlplane import ControlPlane
from e2e.pki import CertAuthority
from e2e.registry import Registry
from e2e.webhookconfig import mutating_webhook_configuration
from tests.registry.registry_harness import PASSWORD, USER, start_basic_auth_registry
from tests.server.harness import Webhook, make_certs, run_webhook
from webhook.config import load
from webhook.kube import api_client, close
from webhook.registry_lookups import PullSecretReader


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return CertAuthority(tmp_path_factory.mktemp("pki"), "registry")


@pytest.fixture(scope="module")
def private_registry(
    tmp_path_factory: pytest.TempPathFactory, pki: CertAuthority
) -> Iterator[Registry]:
    registry, pusher = start_basic_auth_registry(tmp_path_factory.mktemp("private-registry"), pki)
    pusher.image("team/api", "1.0", entrypoint=["/api"], cmd=["--listen=:8080"])
    pusher.close()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane,
    private_registry: Registry,
    pki: CertAuthority,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("webhook")
    env = {
        "PODINIT_KUBECONFIG": str(control_plane.kubeconfig),
        "PODINIT_REGISTRY_CA_FILE": str(pki.cert),
    }
    certs = make_certs(tmp)
    with run_webhook(certs, tmp, env=env) as running:
        name = f"podinit-pull-{tmp.name}"[:60].lower().replace("_", "-")
        bundle = base64.b64encode(certs.ca_file.read_bytes()).decode()
        selector = {"matchLabels": {"podinit.dev/inject": "enabled"}}
        control_plane.apply(
            mutating_webhook_configuration(
                name, f"{running.url}/mutate", bundle, namespace_selector=selector
            )
        )
        yield running
        control_plane.kubectl("delete", "mutatingwebhookconfiguration", name, check=False)


def docker_config(host: str) -> str:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}})


def create_pull_secret(cp: ControlPlane, namespace: str, name: str, host: str) -> None:
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": name, "namespace": namespace},
            "data": {".dockerconfigjson": base64.b64encode(docker_config(host).encode()).decode()},
        }
    )


def create_pod(
    cp: ControlPlane, namespace: str, name: str, image: str, **spec: Any
) -> tuple[dict[str, Any], str]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "api", "image": image}], **spec},
    }
    created = cp.kubectl("create", "-f", "-", input=json.dumps(pod))
    return cp.kubectl_json("get", "pod", name, "-n", namespace), created.stderr


def wait_for_default_account(cp: ControlPlane, namespace: str) -> None:
    def exists() -> bool:
        return (
            cp.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode
            == 0
        )

    cp.wait_for("the default ServiceAccount", exists, timeout=60)


def test_the_pods_own_pull_secret_lets_the_webhook_read_a_private_image(
    control_plane: ControlPlane, namespace: str, webhook: Webhook, private_registry: Registry
) -> None:
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
    wait_for_default_account(cp, namespace)
    create_pull_secret(cp, namespace, "regcred", private_registry.host)
    image = f"{private_registry.host}/team/api:1.0"
    pod, _ = create_pod(cp, namespace, "with-secret", image, imagePullSecrets=[{"name": "regcred"}])
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["/podinit/podinit", "--", "/api"]
    assert container["args"] == ["--listen=:8080"]


def test_the_service_accounts_pull_secret_is_used_too(
    control_plane: ControlPlane, namespace: str, webhook: Webhook, private_registry: Registry
) -> None:
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
    create_pull_secret(cp, namespace, "builder-cred", private_registry.host)
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": namespace},
            "imagePullSecrets": [{"name": "builder-cred"}],
        }
    )
    image = f"{private_registry.host}/team/api:1.0"
    pod, _ = create_pod(cp, namespace, "via-account", image, serviceAccountName="builder")
    assert pod["spec"]["containers"][0]["command"] == ["/podinit/podinit", "--", "/api"]


def test_without_credentials_the_pod_is_admitted_unwrapped_and_kubectl_prints_the_warning(
    control_plane: ControlPlane, namespace: str, webhook: Webhook, private_registry: Registry
) -> None:
    cp = control_plane
    cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
    wait_for_default_account(cp, namespace)
    pod, stderr = create_pod(cp, namespace, "no-secret", f"{private_registry.host}/team/api:1.0")
    assert "command" not in pod["spec"]["containers"][0]
    assert "Warning: podinit: api not wrapped: " in stderr
    status = json.loads(pod["metadata"]["annotations"]["podinit.dev/status"])
    assert status["containers"]["api"].startswith("failed: ")


class CountingCore:
    """The real CoreV1Api, counting the reads podinit makes through it."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.reads: Counter[tuple[str, str]] = Counter()

    async def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        self.reads["secret", name] += 1
        return await self.api.read_namespaced_secret(name, namespace)

    async def read_namespaced_service_account(self, name: str, namespace: str) -> Any:
        self.reads["serviceaccount", name] += 1
        return await self.api.read_namespaced_service_account(name, namespace)


def test_concurrent_admissions_read_each_object_once_then_hit_the_cache_synchronously(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    create_pull_secret(cp, namespace, "own", "own.registry.example")
    create_pull_secret(cp, namespace, "inherited", "inherited.registry.example")
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": namespace},
            "imagePullSecrets": [{"name": "inherited"}, {"name": "own"}, {"name": "inherited"}],
        }
    )
    # As the kubelet: the pod's own secrets; the ServiceAccount's only for a pod without any.
    without = {"spec": {"serviceAccountName": "builder"}}
    with_own = {"spec": {"serviceAccountName": "builder", "imagePullSecrets": [{"name": "own"}]}}

    async def main() -> tuple[list[list[bytes]], list[bytes] | None, list[bytes], Counter[Any]]:
        api = await api_client(load(None, kubeconfig=cp.kubeconfig), user_kubeconfig=False)
        assert api is not None
        try:
            core = CountingCore(kube.CoreV1Api(api))
            reader = PullSecretReader(core)
            assert reader.known_for_pod(namespace, without) is None
            answers = await asyncio.gather(*(reader.for_pod(namespace, without) for _ in range(50)))
            own = await reader.for_pod(namespace, with_own)
            return answers, reader.known_for_pod(namespace, without), own, core.reads
        finally:
            await close(api)

    answers, known, own, reads = asyncio.run(main())

    def hosts(payloads: list[bytes]) -> list[str]:
        return [next(iter(json.loads(payload)["auths"])) for payload in payloads]

    assert hosts(answers[0]) == ["inherited.registry.example", "own.registry.example"]
    assert all(answer == answers[0] for answer in answers)
    assert known == answers[0]
    assert hosts(own) == ["own.registry.example"]
    assert reads == {
        ("serviceaccount", "builder"): 1,
        ("secret", "own"): 1,
        ("secret", "inherited"): 1,
    }


def test_a_legacy_dockercfg_secret_is_used_and_objects_that_are_missing_or_of_another_type_are_not(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    legacy = {"legacy.registry.example": {"auth": base64.b64encode(b"u:p").decode()}}
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockercfg",
            "metadata": {"name": "legacy", "namespace": namespace},
            "data": {".dockercfg": base64.b64encode(json.dumps(legacy).encode()).decode()},
        }
    )
    opaque = docker_config("opaque.registry.example").encode()
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "opaque", "namespace": namespace},
            "data": {".dockerconfigjson": base64.b64encode(opaque).decode()},
        }
    )
    listed = {
        "spec": {"imagePullSecrets": [{"name": "gone"}, {"name": "opaque"}, {"name": "legacy"}]}
    }
    no_account = {"spec": {"serviceAccountName": "nobody"}}

    async def main() -> tuple[list[bytes], list[bytes]]:
        api = await api_client(load(None, kubeconfig=cp.kubeconfig), user_kubeconfig=False)
        assert api is not None
        try:
            reader = PullSecretReader(kube.CoreV1Api(api))
            return await reader.for_pod(namespace, listed), await reader.for_pod(
                namespace, no_account
            )
        finally:
            await close(api)

    from_list, from_missing_account = asyncio.run(main())
    assert [json.loads(payload) for payload in from_list] == [{"auths": legacy}]
    assert from_missing_account == []
