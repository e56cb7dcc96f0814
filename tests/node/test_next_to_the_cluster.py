"""podinit next to what else changes pods, on the real node (issue 17): a tag that moves, a
template written by `podinit inject` whose image is bumped, `podinit scan` after the chart's
default install and a rollout restart, and the QoS class the kubelet runs a wrapped pod in.

The tests run in file order and share one release: the chart's defaults (imageVolume mode on
this 1.37 node) with tag lookups revalidated at once, then copy mode for the QoS test.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.node import workloads
from e2e.node.cluster import Cluster
from e2e.node.workloads import RELEASE, RELEASE_NAMESPACE
from e2e.registry import Pushed, Pusher

ROOT = Path(__file__).resolve().parents[2]
STATUS = "podinit.dev/status"
REPO = "podinit-test/app"
INIT = "/podinit/podinit"


def variant(word: str) -> list[str]:
    """An ENTRYPOINT that says which image's argv runs, then runs the app."""
    return ["/bin/sh", "-c", f"echo argv-of-{word}; exec /bin/app"]


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[None]:
    # a moved tag is seen at the next lookup (the default keeps a tag's digest for 5 min)
    workloads.helm_install(cluster, values=workloads.chart_values(cluster, tagTtlSeconds=0))
    yield
    cluster.cp.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


@pytest.fixture
def labelled(cluster: Cluster) -> Iterator[str]:
    name = workloads.fresh_namespace(cluster, prefix="next")
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def pusher(cluster: Cluster) -> Iterator[Pusher]:
    trust = ssl.create_default_context(cafile=str(cluster.cp.ca.cert))
    with Pusher(cluster.registry, verify=trust) as push:
        yield push


def push_variant(cluster: Cluster, pusher: Pusher, tag: str, word: str) -> Pushed:
    source = cluster.images["app"].reference.rsplit(":", 1)[1]
    return pusher.with_argv(REPO, source, tag, entrypoint=variant(word), cmd=None)


def image(cluster: Cluster, tag: str) -> str:
    return f"{cluster.registry.host}/{REPO}:{tag}"


def pod_of(cluster: Cluster, name: str, namespace: str, reference: str) -> dict[str, Any]:
    pod = workloads.app_pod(name, namespace, cluster, grace=5)
    pod["spec"]["containers"][0]["image"] = reference
    pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    return pod


def ran(cluster: Cluster, namespace: str, name: str) -> tuple[str, str]:
    """(the argv's word the app printed, the digest of the image the runtime runs)."""
    cp = cluster.cp

    def printed() -> str | None:
        found = re.search(r"argv-of-(\w+)", workloads.logs(cluster, namespace, name))
        return found[1] if found else None

    word: str = cp.wait_for(f"{name}'s first log line", printed, timeout=30)
    stored = cp.kubectl_json("get", "pod", name, "-n", namespace)
    image_id: str = stored["status"]["containerStatuses"][0]["imageID"]
    return word, image_id.rsplit("@", 1)[-1]


def status(pod: dict[str, Any]) -> dict[str, Any]:
    return json.loads(pod["metadata"]["annotations"][STATUS])  # type: ignore[no-any-return]


def test_a_moved_tag_runs_the_image_whose_argv_was_read_where_an_unpinned_pod_runs_the_old_one(
    cluster: Cluster, release: None, labelled: str, namespace: str, pusher: Pusher
) -> None:
    tag = f"moving-{uuid.uuid4().hex[:6]}"  # the node has no copy of it from an earlier run
    one = push_variant(cluster, pusher, tag, "one")
    first = workloads.create_ready(cluster, pod_of(cluster, "first", labelled, image(cluster, tag)))
    assert first["spec"]["containers"][0]["image"] == f"{image(cluster, tag)}@{one.digest}"
    assert ran(cluster, labelled, "first") == ("one", one.digest)

    # an unwrapped pod by tag: the node now has the tag's "one"
    plain = pod_of(cluster, "plain", namespace, image(cluster, tag))
    assert STATUS not in workloads.create_ready(cluster, plain)["metadata"].get("annotations", {})

    two = push_variant(cluster, pusher, tag, "two")  # the tag moves
    # the hazard pinning avoids, on this node: by tag with IfNotPresent, the node's old copy
    late = pod_of(cluster, "late", namespace, image(cluster, tag))
    workloads.create_ready(cluster, late)
    assert ran(cluster, namespace, "late") == ("one", one.digest)

    second = pod_of(cluster, "second", labelled, image(cluster, tag))
    stored = workloads.create_ready(cluster, second)
    assert stored["spec"]["containers"][0]["image"] == f"{image(cluster, tag)}@{two.digest}"
    assert status(stored)["fromImage"]["app"]["image"].endswith(two.digest)
    assert ran(cluster, labelled, "second") == ("two", two.digest)


def podinit_cli(
    cluster: Cluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, trusting the node's registry and naming its init image."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    env["PODINIT_REGISTRY_CA_FILE"] = str(cluster.cp.ca.cert)
    env["PODINIT_INIT_IMAGE"] = cluster.images["init"].reference
    return subprocess.run(
        [sys.executable, "-m", "webhook.cli.main", *args],
        input=stdin, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


def deployment(name: str, reference: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "app", "image": reference}],
                },
            },
        },
    }


def only_pod(cluster: Cluster, namespace: str, selector: str, image_prefix: str) -> dict[str, Any]:
    """The one Ready pod of `selector` whose image starts with `image_prefix`."""

    def ready() -> dict[str, Any] | None:
        pods = cluster.cp.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
        for pod in pods:
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod.get("status", {}).get("conditions", [])
            )
            app = pod["spec"]["containers"][0]["image"]
            if (
                ready
                and app.startswith(image_prefix)
                and not pod["metadata"].get("deletionTimestamp")
            ):
                return pod  # type: ignore[no-any-return]
        return None

    return cluster.cp.wait_for(f"a Ready pod of {image_prefix}", ready, timeout=120)  # type: ignore[no-any-return]


def test_a_template_podinit_inject_wrote_runs_the_new_images_argv_after_set_image(
    cluster: Cluster, release: None, labelled: str, pusher: Pusher, tmp_path: Path
) -> None:
    one = push_variant(cluster, pusher, "gitops-1", "one")
    two = push_variant(cluster, pusher, "gitops-2", "two")
    source = tmp_path / "web.yaml"
    source.write_text(yaml.safe_dump(deployment("web", image(cluster, "gitops-1"))))
    injected = podinit_cli(cluster, "inject", "-f", str(source))
    assert injected.returncode == 0, injected.stderr
    template = yaml.safe_load(injected.stdout)["spec"]["template"]["spec"]["containers"][0]
    assert template["command"] == [INIT, "--", *variant("one")]
    assert template["image"] == f"{image(cluster, 'gitops-1')}@{one.digest}"

    cluster.cp.kubectl("apply", "-n", labelled, "-f", "-", input=injected.stdout)
    first = only_pod(cluster, labelled, "app=web", image(cluster, "gitops-1"))
    assert ran(cluster, labelled, first["metadata"]["name"]) == ("one", one.digest)

    cluster.cp.kubectl(
        "set", "image", "-n", labelled, "deployment/web", f"app={image(cluster, 'gitops-2')}"
    )
    bumped = only_pod(cluster, labelled, "app=web", image(cluster, "gitops-2"))
    app = bumped["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", *variant("two")]
    assert app["image"] == f"{image(cluster, 'gitops-2')}@{two.digest}"
    assert ran(cluster, labelled, bumped["metadata"]["name"]) == ("two", two.digest)


def scan(cluster: Cluster, namespace: str) -> tuple[int, dict[str, str], str]:
    """`podinit scan --fail-on-unwrapped -n NAMESPACE -o json`: exit code, state per pod."""
    done = podinit_cli(
        cluster, "scan", "--kubeconfig", str(cluster.cp.kubeconfig), "-n", namespace,
        "-o", "json", "--fail-on-unwrapped",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    rows = json.loads(done.stdout)["rows"]
    return done.returncode, {r["pod"]: r["state"] for r in rows}, done.stderr


def test_scan_calls_image_volume_pods_wrapped_and_old_pods_lingering_after_a_restart_terminating(
    cluster: Cluster, release: None
) -> None:
    cp = cluster.cp
    namespace = workloads.fresh_namespace(cluster, prefix="scan", labelled=False)
    try:
        # created before the namespace opted in: unwrapped; the shell ignores SIGTERM, so
        # after a restart these linger for their whole grace period
        cp.kubectl(
            "create",
            "deployment",
            "old",
            "-n",
            namespace,
            f"--image={cluster.images['app'].reference}",
        )
        cp.kubectl(
            "rollout", "status", "-n", namespace, "deployment/old", "--timeout=90s", timeout=100
        )
        cp.kubectl("label", "namespace", namespace, "podinit.dev/inject=enabled")
        code, states, _ = scan(cluster, namespace)
        assert (code, set(states.values())) == (1, {"slipped"})

        cp.kubectl("rollout", "restart", "-n", namespace, "deployment/old")
        cp.kubectl(
            "rollout", "status", "-n", namespace, "deployment/old", "--timeout=90s", timeout=100
        )
        code, states, stderr = scan(cluster, namespace)
        assert sorted(states.values()) == ["terminating", "wrapped"], states
        assert code == 0, stderr
        wrapped = [p for p, s in states.items() if s == "wrapped"]
        stored = cp.kubectl_json("get", "pod", wrapped[0], "-n", namespace)
        volumes = [v for v in stored["spec"]["volumes"] if v["name"] == "podinit"]
        assert "image" in volumes[0], "the chart's default on 1.37 is imageVolume mode"
    finally:
        cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def copy_mode(cluster: Cluster, release: None) -> None:
    """The release upgraded to copy mode, for the rest of the module."""
    values = workloads.chart_values(cluster, tagTtlSeconds=0, injectionMode="copy")
    workloads.helm_install(cluster, values=values)


def qos_cgroup(cluster: Cluster, namespace: str, name: str) -> str:
    """The QoS level of the cgroup the kubelet put the app's PID 1 in."""
    text = cluster.cp.kubectl("exec", "-n", namespace, name, "--", "cat", "/proc/1/cgroup").stdout
    path = next(line.split(":", 2)[2] for line in text.splitlines() if ":memory:" in line)
    found = re.search(r"kubepods[-/.]?(burstable|besteffort)?", path)
    assert found, path
    return found[1] or "guaranteed"


@pytest.mark.parametrize(
    "resources",
    [
        {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        {"requests": {"cpu": "50m"}},
        None,
    ],
    ids=["guaranteed", "burstable", "best-effort"],
)
def test_a_copy_mode_pod_runs_in_the_qos_class_of_its_unwrapped_twin(
    cluster: Cluster,
    copy_mode: None,
    labelled: str,
    namespace: str,
    resources: dict[str, Any] | None,
) -> None:
    found = {}
    for ns in (labelled, namespace):
        pod = workloads.app_pod("qos", ns, cluster, grace=5)
        if resources is not None:
            pod["spec"]["containers"][0]["resources"] = resources
        stored = workloads.create_ready(cluster, pod)
        found[ns] = (stored["status"]["qosClass"], qos_cgroup(cluster, ns, "qos"))
        if ns == labelled:
            assert stored["spec"]["initContainers"][0]["name"] == "podinit-install"
    assert found[labelled] == found[namespace]
