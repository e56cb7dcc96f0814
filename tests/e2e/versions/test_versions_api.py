"""What the chart and the webhook ask of the API, on each release's own apiserver (see
conftest.py): the whole chart installed, upgraded and uninstalled with Helm 3 and Helm 4; the
pod's ServiceAccount and its pull secret read to look up a private image's ENTRYPOINT; an
image without a config admitted unwrapped with the warning, the status and an Event."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from e2e.controlplane import ControlPlane
from e2e.registry import Registry
from e2e.tools import minor_of
from tests.e2e.events_helpers import wait_for_events
from tests.e2e.scenario_helpers import (
    CHART,
    INIT,
    UNREACHABLE_IMAGE,
    Podinit,
    container,
    create,
    pod,
    status,
    unique,
)
from tests.e2e.versions.conftest import PRIVATE_IMAGE
from tests.registry.registry_harness import PASSWORD, USER


def rendered_kinds(cp: ControlPlane, helm_major: int, *sets: str) -> Counter[str]:
    """What `helm template` renders of the chart with these values for this release, by kind,
    without hooks (the `helm test` pod)."""
    minor = minor_of(cp.tools.kube_version)
    template = ["template", "x", str(CHART), "--kube-version", f"1.{minor}.0", "--no-hooks"]
    out = cp.helm(*template, *sets, major=helm_major).stdout
    return Counter(doc["kind"] for doc in yaml.safe_load_all(out) if doc)


def release_objects(cp: ControlPlane, release: str, kinds: Iterable[str]) -> Counter[str]:
    """Objects the apiserver holds with the release's instance label, by kind."""
    selector = f"app.kubernetes.io/instance={release}"
    items = cp.kubectl_json("get", ",".join(sorted(kinds)), "-A", "-l", selector)["items"]
    return Counter(item["kind"] for item in items)


@pytest.mark.parametrize("helm_major", [3, 4])
def test_the_whole_chart_installs_upgrades_and_uninstalls_with_helm(
    versioned: ControlPlane, helm_major: int
) -> None:
    cp = versioned
    version = cp.helm("version", "--short", major=helm_major).stdout
    assert version.startswith(f"v{helm_major}."), version
    release, namespace = unique(f"matrix-helm{helm_major}"), unique("matrix-chart")
    # a selector no namespace has: the installed webhook (no pod serves it here) sees nothing
    expression = "webhook.namespaceSelectorExpressions[0]"
    quiet = [
        "--set",
        f"{expression}.key=podinit-matrix-nobody",
        "--set",
        f"{expression}.operator=Exists",
    ]
    wanted = rendered_kinds(cp, helm_major, *quiet)
    assert wanted["Deployment"] == 1 and wanted["MutatingWebhookConfiguration"] == 1, wanted
    install = ["install", release, str(CHART), "-n", namespace, "--create-namespace"]
    cp.helm(*install, *quiet, major=helm_major)
    try:
        assert release_objects(cp, release, wanted) == wanted
        upgrade = ["upgrade", release, str(CHART), "-n", namespace, "--set", "replicaCount=3"]
        cp.helm(*upgrade, *quiet, major=helm_major)
        selector = f"app.kubernetes.io/instance={release}"
        [deployment] = cp.kubectl_json("get", "deployment", "-n", namespace, "-l", selector)[
            "items"
        ]
        assert deployment["spec"]["replicas"] == 3
    finally:
        cp.helm("uninstall", release, "-n", namespace, major=helm_major)
    assert release_objects(cp, release, wanted) == Counter()


def test_a_private_images_entrypoint_is_read_with_the_pull_secret_of_the_pods_service_account(
    versioned: ControlPlane, podinit: Podinit, opted_in: str, private_registry: Registry
) -> None:
    cp = versioned
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = json.dumps({"auths": {private_registry.host: {"auth": auth}}})
    cp.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "builder-cred", "namespace": opted_in},
            "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": opted_in},
            "imagePullSecrets": [{"name": "builder-cred"}],
        },
    )
    api = container("api", image=f"{private_registry.host}/{PRIVATE_IMAGE}:1.0")
    stored, stderr = create(
        cp, pod(opted_in, "via-account", api, spec={"serviceAccountName": "builder"})
    )
    assert "Warning" not in stderr, stderr
    [wrapped] = stored["spec"]["containers"]
    assert (wrapped["command"], wrapped["args"]) == ([INIT, "--", "/api"], ["--listen=:8080"])
    assert (status(stored) or {})["containers"] == {"api": "injected"}


def test_an_image_without_a_config_is_admitted_unwrapped_with_the_warning_the_status_and_an_event(
    versioned: ControlPlane, podinit: Podinit, opted_in: str
) -> None:
    cp = versioned
    lost = container("lost", image=UNREACHABLE_IMAGE)
    stored, stderr = create(cp, pod(opted_in, "lost", lost))
    assert "Warning: podinit: lost not wrapped: " in stderr, stderr
    assert "command" not in stored["spec"]["containers"][0]
    decision = (status(stored) or {})["containers"]["lost"]
    assert decision.startswith("failed: ") and "127.0.0.1:9" in decision, decision
    [event] = wait_for_events(cp, opted_in)
    regarding: dict[str, Any] = event["regarding"]
    assert (regarding["kind"], regarding["name"], regarding["uid"]) == (
        "Pod", "lost", stored["metadata"]["uid"],
    )  # fmt: skip
    assert event["type"] == "Warning" and "lost" in event["note"], event
