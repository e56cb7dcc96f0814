"""Shared pieces of the end-to-end scenarios (tests/e2e/test_scenario_*.py).

One `podinit serve` process on 127.0.0.1 with TLS (a CA of e2e.pki, as tests/server uses) and
the chart installed by `helm install` with `server.enabled=false` and `webhook.url` pointing
at it: the MutatingWebhookConfiguration the apiserver uses is the chart's own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from e2e.controlplane import ControlPlane
from e2e.testwebhook import TestWebhook
from tests.server.harness import Webhook, make_certs, run_webhook

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "podinit"
INIT = "/podinit/podinit"  # the default mountPath and the binary in it
COPY_CONTAINER = "podinit-install"
VOLUME = "podinit"
STATUS = "podinit.dev/status"
# An image whose config no registry serves: nothing listens on port 9 (discard), so the
# lookup fails at once, locally.
UNREACHABLE_IMAGE = "127.0.0.1:9/nowhere/app:1"
RESTRICTED_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def unavailable(reason: str) -> NoReturn:
    """Skip when run by hand; fail when CI is set (CI may not skip the end-to-end tests)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the end-to-end tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- the webhook


@dataclass
class Podinit:
    """A running `podinit serve` and the helm release whose webhook configuration calls it."""

    cp: ControlPlane
    server: Webhook
    release: str
    release_namespace: str
    ca_bundle: str
    # Where the webhook configuration sends reviews; None: the server (a dead address makes
    # every admission fail, so that pods slip through under failurePolicy Ignore).
    url: str | None = None

    @property
    def configuration(self) -> str:
        """The chart's MutatingWebhookConfiguration (the release's full name)."""
        return self.release

    def helm_set(self, mode: str = "optIn") -> list[str]:
        values = {
            "mode": mode,
            "server.enabled": "false",
            "webhook.url": self.url or f"{self.server.url}/mutate",
            "webhook.caBundle": self.ca_bundle,
        }
        return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]

    def install(self) -> None:
        self.cp.helm(
            "install", self.release, str(CHART), "-n", self.release_namespace,
            "--create-namespace", *self.helm_set(),
        )  # fmt: skip

    def upgrade(self, mode: str, *helm_args: str) -> None:
        """`helm upgrade` to `mode`, pointing at the server (or `url`); `helm_args` more."""
        self.cp.helm(
            "upgrade", self.release, str(CHART), "-n", self.release_namespace,
            *self.helm_set(mode), *helm_args,
        )  # fmt: skip

    def uninstall(self) -> None:
        self.cp.helm("uninstall", self.release, "-n", self.release_namespace, check=False)
        self.cp.kubectl("delete", "namespace", self.release_namespace, "--wait=false", check=False)

    def webhook_configuration(self) -> dict[str, Any]:
        [hook] = self.cp.kubectl_json("get", "mutatingwebhookconfiguration", self.configuration)[
            "webhooks"
        ]
        return hook  # type: ignore[no-any-return]

    def admissions_total(self) -> dict[str, float]:
        """`podinit_admissions_total` by outcome, from the server's /metrics."""
        with self.server.client() as client:
            text = client.get("/metrics").text
        found: dict[str, float] = {}
        for line in text.splitlines():
            match = re.fullmatch(r'podinit_admissions_total\{outcome="([^"]+)"\} (\S+)', line)
            if match:
                found[match[1]] = float(match[2])
        return found

    def logged_admissions(self, namespace: str) -> list[dict[str, Any]]:
        """The server's JSON log lines for admissions in `namespace` (it logs every one at
        debug level)."""
        return [
            entry
            for entry in self.server.logs()
            if entry.get("msg") == "admitted" and entry.get("namespace") == namespace
        ]


@contextmanager
def running_podinit(
    cp: ControlPlane,
    tmp: Path,
    *,
    env: Mapping[str, str] | None = None,
    release: str | None = None,
    url: str | None = None,
) -> Iterator[Podinit]:
    """`podinit serve` (copy injection mode: the runtime half runs emptyDir volumes only; debug
    logs: one line per admission) and the chart in optIn mode pointing at it (or at `url`)."""
    certs = make_certs(tmp)
    environment = {
        "PODINIT_KUBECONFIG": str(cp.kubeconfig),
        "PODINIT_INJECTION_MODE": "copy",
        "PODINIT_LOG_LEVEL": "debug",
        **(env or {}),
    }
    with run_webhook(certs, tmp, env=environment) as server:
        podinit = Podinit(
            cp=cp,
            server=server,
            # sorts before the scenarios' second webhooks ("zz-..."): ours is called first
            release=release or unique("podinit-scn"),
            release_namespace=(env or {}).get("PODINIT_NAMESPACE") or unique("podinit-scn-release"),
            ca_bundle=base64.b64encode(certs.ca_file.read_bytes()).decode(),
            url=url,
        )
        podinit.install()
        try:
            yield podinit
        finally:
            podinit.uninstall()


ACCOUNT_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@contextmanager
def chart_account(cp: ControlPlane, release: str, namespace: str, *sets: str) -> Iterator[Path]:
    """The ServiceAccount and RBAC the chart renders for `release` in `namespace` with `sets`
    (applied alone: no Deployment), and a kubeconfig with that account's identity, so a server
    run with it has exactly the rights the chart would give it."""
    args = [arg for value in sets for arg in ("--set", value)]
    args += ["--kube-version", cp.tools.kube_version]  # helm template assumes 1.20 otherwise
    rendered = cp.helm("template", release, str(CHART), "-n", namespace, *args).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o and o["kind"] in ACCOUNT_KINDS]
    cp.kubectl("create", "namespace", namespace)
    cp.apply(*objects)
    try:
        yield cp.service_account_kubeconfig(namespace, release)
    finally:
        cluster_wide = [f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objects]
        cluster_wide = [o for o in cluster_wide if o.startswith("cluster")]
        cp.kubectl("delete", "--ignore-not-found", *cluster_wide, check=False)


@contextmanager
def second_webhook(
    cp: ControlPlane,
    namespace: str,
    mutate: Callable[[dict[str, Any]], list[dict[str, Any]] | None],
    *,
    reinvocation_policy: str,
) -> Iterator[tuple[TestWebhook, str]]:
    """Another mutating webhook for the pods of `namespace`, called after podinit's (the
    apiserver calls webhooks in name order): the server and its configuration's name."""
    name = f"zz-podinit-second-{namespace}"
    with TestWebhook(cp.ca, mutate, name=name) as hook:
        cp.apply(
            hook.configuration(
                name,
                reinvocation_policy=reinvocation_policy,
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            )
        )
        try:
            yield hook, name
        finally:
            cp.kubectl("delete", "mutatingwebhookconfiguration", name, check=False)


# --------------------------------------------------------------------------- objects


def container(name: str, command: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "image": extra.pop("image", "busybox:1.36")}
    if command is not None:
        spec["command"] = command
    return {**spec, **extra}


def pod(namespace: str, name: str, *containers: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    spec: dict[str, Any] = metadata.pop("spec", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {"containers": list(containers), **spec},
    }


def deployment(
    namespace: str,
    name: str,
    *containers: dict[str, Any],
    replicas: int = 2,
    kind: str = "Deployment",
    **pod_spec: Any,
) -> dict[str, Any]:
    """A Deployment (or, with ``kind``, a ReplicaSet) of ``containers``."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": list(containers), **pod_spec},
            },
        },
    }


def create(cp: ControlPlane, obj: dict[str, Any], *args: str) -> tuple[dict[str, Any], str]:
    """`kubectl create -o json`: the object as the apiserver answered it, and kubectl's stderr
    (where it prints admission warnings)."""
    done = cp.kubectl("create", "-o", "json", *args, "-f", "-", input=json.dumps(obj))
    return json.loads(done.stdout), done.stderr


def wait_for_default_account(cp: ControlPlane, namespace: str) -> None:
    """Pods are refused until the serviceaccount controller has made `default`."""

    def exists() -> bool:
        got = cp.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False)
        return got.returncode == 0

    cp.wait_for(f"the default ServiceAccount in {namespace}", exists, timeout=60)


def new_namespace(cp: ControlPlane, prefix: str, **labels: str) -> str:
    """A namespace with labels, its default ServiceAccount already there."""
    name = unique(prefix)
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        manifest["metadata"]["labels"] = labels  # type: ignore[index]
    cp.kubectl("create", "-f", "-", input=json.dumps(manifest))
    wait_for_default_account(cp, name)
    return name


def delete_namespace(cp: ControlPlane, name: str) -> None:
    cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


# --------------------------------------------------------------------------- what was done


def is_wrapped(c: Mapping[str, Any]) -> bool:
    command = c.get("command") or [None]
    return bool(command[0] == INIT)


def status(stored: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = (stored["metadata"].get("annotations") or {}).get(STATUS)
    return json.loads(raw) if raw else None


def assert_untouched(stored: Mapping[str, Any], original_commands: Mapping[str, Any]) -> None:
    """No trace of podinit: no status, no volume, no copy container, commands as written."""
    spec = stored["spec"]
    assert status(stored) is None, stored["metadata"].get("annotations")
    assert not [v for v in spec.get("volumes") or [] if v["name"].startswith(VOLUME)]
    assert not [c for c in spec.get("initContainers") or [] if c["name"] == COPY_CONTAINER]
    for c in spec["containers"]:
        assert c.get("command") == original_commands[c["name"]], c


def assert_injected_once(stored: Mapping[str, Any], wrapped: set[str]) -> None:
    """Exactly one copy container and one podinit volume; each container in `wrapped` runs
    `/podinit/podinit -- ...` once and mounts the volume once, read-only."""
    spec = stored["spec"]
    volumes = [v for v in spec.get("volumes") or [] if v["name"].startswith(VOLUME)]
    assert [v["name"] for v in volumes] == [VOLUME], spec.get("volumes")
    assert "emptyDir" in volumes[0]
    copies = [c for c in spec.get("initContainers") or [] if c["name"].startswith(COPY_CONTAINER)]
    assert [c["name"] for c in copies] == [COPY_CONTAINER], spec.get("initContainers")
    assert spec["initContainers"][0]["name"] == COPY_CONTAINER  # before any other init
    for c in spec["containers"]:
        argv = (c.get("command") or []) + (c.get("args") or [])
        mounts = [m for m in c.get("volumeMounts") or [] if m["name"] == VOLUME]
        if c["name"] in wrapped:
            assert is_wrapped(c), c
            assert argv.count(INIT) == 1 and argv[1] == "--", argv
            assert len(mounts) == 1 and mounts[0].get("readOnly") is True, c
        else:
            assert not is_wrapped(c) and not mounts, c
    decisions = (status(stored) or {}).get("containers", {})
    assert {name for name, d in decisions.items() if d == "injected"} == wrapped, decisions
