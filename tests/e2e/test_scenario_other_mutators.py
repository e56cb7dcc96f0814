"""Exactly one init, whatever else mutates the pod, on the real apiserver: second mutators
called after podinit (webhooks, ordered by name) and before it (MutatingAdmissionPolicies,
which the apiserver runs before any webhook), reinvocation included, and pods re-created from
`kubectl get -o json` of wrapped pods. Each pod must be admitted and run podinit once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from e2e.controlplane import ControlPlane
from tests.e2e.scenario_helpers import (
    COPY_CONTAINER,
    INIT,
    VOLUME,
    Podinit,
    container,
    create,
    delete_namespace,
    new_namespace,
    pod,
    second_webhook,
    status,
    unique,
)

SLEEP = ["sh", "-c", "sleep 3600"]
VAULT_ENV = "/vault/vault-env"
WRAPPER = "/wrapper"
Patch = list[dict[str, Any]]


@pytest.fixture
def injected(control_plane: ControlPlane) -> Iterator[str]:
    namespace = new_namespace(control_plane, "e2e-mut", **{"podinit.dev/inject": "enabled"})
    yield namespace
    delete_namespace(control_plane, namespace)


def assert_one_podinit(stored: dict[str, Any], wrapped: set[str]) -> None:
    """One podinit volume and copy container; each container of `wrapped` runs podinit once
    and mounts it once."""
    spec = stored["spec"]
    assert [v["name"] for v in spec["volumes"] if v["name"].startswith(VOLUME)] == [VOLUME]
    copies = [c["name"] for c in spec["initContainers"] if c["name"].startswith(COPY_CONTAINER)]
    assert copies == [COPY_CONTAINER] and spec["initContainers"][0]["name"] == COPY_CONTAINER
    for c in spec["containers"]:
        argv = (c.get("command") or []) + (c.get("args") or [])
        at = [m["mountPath"] for m in c.get("volumeMounts") or [] if m["name"] == VOLUME]
        if c["name"] in wrapped:
            assert argv.count(INIT) == 1 and argv[argv.index(INIT) + 1] == "--", argv
            assert at == ["/podinit"], c
    decisions = (status(stored) or {})["containers"]
    assert {n for n, d in decisions.items() if d == "injected"} == wrapped, decisions


# --------------------------------------------------------------------------- after podinit


def moves_command_into_args(request: dict[str, Any]) -> Patch | None:
    """bank-vaults' vault-env, as a webhook: `command: [vault-env]`, the command into args."""
    app = request["object"]["spec"]["containers"][0]
    command = app.get("command") or []
    if not command or VAULT_ENV in command + (app.get("args") or []):
        return None
    return [
        {"op": "add", "path": "/spec/containers/0/command", "value": [VAULT_ENV]},
        {
            "op": "add",
            "path": "/spec/containers/0/args",
            "value": command + (app.get("args") or []),
        },
    ]


def adds_an_init_container_and_a_sidecar(request: dict[str, Any]) -> Patch | None:
    """A service mesh: its init container first, a proxy container last."""
    spec = request["object"]["spec"]
    if any(c["name"] == "mesh-proxy" for c in spec["containers"]):
        return None
    mesh_init = container("mesh-init", ["true"])
    inits = (
        [{"op": "add", "path": "/spec/initContainers/0", "value": mesh_init}]
        if spec.get("initContainers")
        else [{"op": "add", "path": "/spec/initContainers", "value": [mesh_init]}]
    )
    proxy = container("mesh-proxy", ["sh", "-c", "sleep 7200"])
    return [*inits, {"op": "add", "path": "/spec/containers/-", "value": proxy}]


def test_a_webhook_moving_the_command_into_args_after_podinit_leaves_one_podinit(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    cp = control_plane
    with second_webhook(cp, injected, moves_command_into_args, reinvocation_policy="IfNeeded"):
        stored, _ = create(cp, pod(injected, "vault", container("app", SLEEP)))
    app = stored["spec"]["containers"][0]
    assert app["command"] == [VAULT_ENV]
    assert app["args"] == [INIT, "--", *SLEEP]
    assert_one_podinit(stored, {"app"})


def prepends_a_wrapper(request: dict[str, Any]) -> Patch | None:
    """An entrypoint wrapper put in front of whatever runs, unless it is already first."""
    command = request["object"]["spec"]["containers"][0].get("command") or []
    if not command or command[0] == WRAPPER:
        return None
    return [{"op": "add", "path": "/spec/containers/0/command/0", "value": WRAPPER}]


def test_a_webhook_prepending_its_wrapper_after_podinit_leaves_one_podinit_behind_it(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    cp = control_plane
    with second_webhook(cp, injected, prepends_a_wrapper, reinvocation_policy="IfNeeded"):
        stored, _ = create(cp, pod(injected, "wrapper", container("app", SLEEP)))
    assert stored["spec"]["containers"][0]["command"] == [WRAPPER, INIT, "--", *SLEEP]
    assert_one_podinit(stored, {"app"})


def test_a_webhook_adding_an_init_container_and_a_sidecar_after_podinit_gets_both_handled(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    cp = control_plane
    with second_webhook(
        cp, injected, adds_an_init_container_and_a_sidecar, reinvocation_policy="IfNeeded"
    ):
        stored, _ = create(cp, pod(injected, "mesh", container("app", SLEEP)))
    inits = [c["name"] for c in stored["spec"]["initContainers"]]
    assert inits == [COPY_CONTAINER, "mesh-init"]
    assert_one_podinit(stored, {"app", "mesh-proxy"})


# --------------------------------------------------------------------------- before podinit


@contextmanager
def policy_before_podinit(
    cp: ControlPlane,
    namespace: str,
    *,
    condition: str,
    patch: str,
    acted: Callable[[dict[str, Any]], bool],
) -> Iterator[None]:
    """A MutatingAdmissionPolicy (CEL JSON patch) bound to `namespace`, reinvoked when
    podinit changed the pod after it; in force once a dry-run pod shows it `acted`."""
    name = unique("podinit-mut-policy")
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "matchConditions": [{"name": "not-yet", "expression": condition}],
            "failurePolicy": "Fail",
            "reinvocationPolicy": "IfNeeded",
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": patch}}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    cp.apply(policy, binding)
    try:
        # the apiserver picks policies up from its informers: wait until one has acted
        probe = pod(namespace, unique("probe"), container("probe", ["probe"]))
        cp.wait_for(f"policy {name} in force", lambda: acted(_dry_run(cp, probe)), timeout=30)
        yield
    finally:
        cp.kubectl("delete", "mutatingadmissionpolicybinding", name, check=False)
        cp.kubectl("delete", "mutatingadmissionpolicy", name, check=False)


def _dry_run(cp: ControlPlane, manifest: dict[str, Any]) -> dict[str, Any]:
    done = cp.kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(manifest)
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_policy_that_prepends_its_wrapper_whenever_command_0_is_not_it_leaves_one_podinit(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    """The naive wrapper runs again after podinit (reinvocation) and wraps podinit's command;
    podinit, reinvoked in turn, must recognise itself behind it."""
    with policy_before_podinit(
        control_plane,
        injected,
        condition=f"object.spec.containers[0].command[0] != '{WRAPPER}'",
        patch=(
            '[JSONPatch{op: "add", path: "/spec/containers/0/command", '
            f"value: ['{WRAPPER}'] + object.spec.containers[0].command}}]"
        ),
        acted=lambda dry: dry["spec"]["containers"][0]["command"][0] == WRAPPER,
    ):
        stored, _ = create(control_plane, pod(injected, "wrapped", container("app", SLEEP)))
    app = stored["spec"]["containers"][0]
    assert app["command"] == [WRAPPER, INIT, "--", WRAPPER, *SLEEP]
    assert_one_podinit(stored, {"app"})


def test_a_policy_moving_the_command_into_args_before_podinit_gets_its_wrapper_wrapped_once(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    app = "object.spec.containers[0]"
    with policy_before_podinit(
        control_plane,
        injected,
        condition=f"!('{VAULT_ENV}' in {app}.command) && "
        f"!(has({app}.args) && '{VAULT_ENV}' in {app}.args)",
        patch=(
            f'[JSONPatch{{op: "add", path: "/spec/containers/0/args", value: {app}.command + '
            f"(has({app}.args) ? {app}.args : [])}}, "
            f'JSONPatch{{op: "add", path: "/spec/containers/0/command", value: ["{VAULT_ENV}"]}}]'
        ),
        acted=lambda dry: VAULT_ENV in dry["spec"]["containers"][0]["command"],
    ):
        stored, _ = create(control_plane, pod(injected, "vault", container("app", SLEEP)))
    app_spec = stored["spec"]["containers"][0]
    assert app_spec["command"] == [INIT, "--", VAULT_ENV]
    assert app_spec["args"] == SLEEP
    assert_one_podinit(stored, {"app"})


def test_a_policy_adding_an_init_container_and_a_sidecar_before_podinit_gets_both_wrapped_once(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    with policy_before_podinit(
        control_plane,
        injected,
        condition="!object.spec.containers.exists(c, c.name == 'mesh-proxy')",
        patch=(
            '[JSONPatch{op: "add", path: "/spec/initContainers", value: '
            "[Object.spec.initContainers{name: 'mesh-init', image: 'busybox:1.36', "
            "command: ['true']}]}, "
            'JSONPatch{op: "add", path: "/spec/containers/-", value: '
            "Object.spec.containers{name: 'mesh-proxy', image: 'busybox:1.36', "
            "command: ['sh', '-c', 'sleep 7200']}}]"
        ),
        acted=lambda dry: "mesh-init" in [c["name"] for c in dry["spec"]["initContainers"]],
    ):
        stored, _ = create(control_plane, pod(injected, "meshed", container("app", SLEEP)))
    assert [c["name"] for c in stored["spec"]["initContainers"]] == [COPY_CONTAINER, "mesh-init"]
    assert_one_podinit(stored, {"app", "mesh-proxy"})


# --------------------------------------------------------------------------- re-created


def recreated(stored: dict[str, Any], name: str, **edits: Any) -> dict[str, Any]:
    """What a user re-creates from `kubectl get -o json`: server-set fields dropped."""
    manifest = {k: v for k, v in stored.items() if k != "status"}
    metadata = {
        k: v
        for k, v in stored["metadata"].items()
        if k not in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")
    }
    manifest["metadata"] = {**metadata, "name": name}
    manifest["spec"]["containers"][0].update(edits)
    return manifest


@pytest.mark.parametrize(
    "edits",
    [{}, {"command": ["sh", "-c", "sleep 7200"]}],
    ids=["as-it-was", "with-another-command"],
)
def test_a_pod_recreated_from_its_own_wrapped_spec_is_admitted_with_one_podinit(
    control_plane: ControlPlane, podinit: Podinit, injected: str, edits: dict[str, Any]
) -> None:
    cp = control_plane
    first, _ = create(cp, pod(injected, "first", container("app", SLEEP)))
    stored, _ = create(cp, recreated(first, unique("again"), **edits))
    assert_one_podinit(stored, {"app"})
    command = edits.get("command", SLEEP)
    assert stored["spec"]["containers"][0]["command"] == [INIT, "--", *command]


_COUNT = r"\{(?P<labels>[^}]*)\} (?P<count>\d+)$"
_ADMITTED = re.compile(
    r"^apiserver_admission_controller_admission_duration_seconds_count" + _COUNT, re.M
)
_REQUESTS = re.compile(r"^apiserver_request_total" + _COUNT, re.M)
_BY_SERVICE_ACCOUNT = {'name="ServiceAccount"', 'operation="CREATE"', 'type="admit"'}


def _counts(cp: ControlPlane) -> tuple[int, int]:
    """So far: creations the built-in ServiceAccount plugin admitted (of any resource: the
    metric has no resource label), and POST requests the apiserver served."""
    metrics = cp.kubectl("get", "--raw", "/metrics").stdout

    def total(pattern: re.Pattern[str], wanted: set[str]) -> int:
        found = pattern.finditer(metrics)
        return sum(int(m["count"]) for m in found if wanted <= set(m["labels"].split(",")))

    return total(_ADMITTED, _BY_SERVICE_ACCOUNT), total(_REQUESTS, {'verb="POST"'})


def service_account_admissions(cp: ControlPlane, manifest: dict[str, Any]) -> int:
    """How many times the ServiceAccount plugin admitted the creation of `manifest`, counted in
    a window in which the apiserver served no other POST (a controller's Event, a ConfigMap of
    a new namespace): such a window is measured again, with a new name."""
    for _ in range(5):
        manifest["metadata"]["name"] = unique("counted")
        admitted, posts = _counts(cp)
        create(cp, manifest)
        admitted_after, posts_after = _counts(cp)
        if posts_after - posts == 1:
            return admitted_after - admitted
    pytest.fail("the apiserver served other creations in each of 5 windows")


def test_the_apiservers_built_in_mutating_plugins_run_again_after_podinit_changed_the_pod(
    control_plane: ControlPlane, podinit: Podinit, injected: str
) -> None:
    """Built-in mutating plugins run a second time when a webhook changed the object, with
    nothing else asking for it: that second run is how a platform's own plugin treats the copy
    container podinit added like the app's (OpenShift's SCC giving each container its uid,
    reproduced in tests/node/test_uid_ranges.py). The apiserver's own count of its
    ServiceAccount plugin's admissions shows it; a pod podinit leaves alone is the baseline."""
    cp = control_plane
    plain = new_namespace(cp, "e2e-plain")
    try:
        left_alone = service_account_admissions(cp, pod(plain, "", container("app", SLEEP)))
        wrapped = service_account_admissions(cp, pod(injected, "", container("app", SLEEP)))
    finally:
        delete_namespace(cp, plain)
    stored = cp.kubectl_json("get", "pods", "-n", injected)["items"][0]
    assert stored["spec"]["initContainers"][0]["name"] == COPY_CONTAINER
    assert (left_alone, wrapped) == (1, 2)
