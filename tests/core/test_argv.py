"""The four Kubernetes command/args cases, and `$` escaping of strings taken from the image."""

from __future__ import annotations

import pytest

from tests.core.helpers import INIT, SETTINGS, container, images, mutate, mutated, pod


def test_a_container_with_a_command_gets_the_init_in_front_and_keeps_its_args() -> None:
    result = mutated(pod(container(command=["sh", "-c"], args=["exec app $(PORT)"])))
    app = result["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "sh", "-c"]
    assert app["args"] == ["exec app $(PORT)"]


def test_a_container_with_only_args_gets_the_image_entrypoint_as_command() -> None:
    lookup = images(app=(["/docker-entrypoint.sh"], ["nginx", "-g", "daemon off;"]))
    result = mutated(pod(container(args=["nginx", "-T"])), lookup)
    app = result["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/docker-entrypoint.sh"]
    assert app["args"] == ["nginx", "-T"]


def test_a_container_with_neither_gets_entrypoint_and_pins_the_image_cmd_as_args() -> None:
    lookup = images(app=(["/entry"], ["serve", "--port=80"]))
    app = mutated(pod(container()), lookup)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/entry"]
    assert app["args"] == ["serve", "--port=80"]


def test_an_image_with_only_cmd_runs_the_cmd_behind_the_init() -> None:
    app = mutated(pod(container()), images(app=([], ["python", "app.py"])))["spec"]["containers"][0]
    assert app["command"] == [INIT, "--"]
    assert app["args"] == ["python", "app.py"]


def test_an_image_with_only_entrypoint_gets_no_args() -> None:
    app = mutated(pod(container()), images(app=(["/app"], [])))["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/app"]
    assert "args" not in app


def test_dollar_signs_from_the_image_are_escaped_so_the_kubelet_leaves_them_alone() -> None:
    lookup = images(app=(["sh", "-c"], ["echo $HOME $(date) $$"]))
    app = mutated(pod(container()), lookup)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "sh", "-c"]
    assert app["args"] == ["echo $$HOME $$(date) $$$$"]


def test_dollar_signs_written_in_the_pod_spec_stay_as_they_are() -> None:
    lookup = images(app=(["/bin/$weird"], ["unused"]))
    app = mutated(pod(container(args=["$(POD_NAME)"])), lookup)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/bin/$$weird"]
    assert app["args"] == ["$(POD_NAME)"]


def test_an_empty_command_list_counts_as_unset_like_kubernetes_does() -> None:
    lookup = images(app=(["/entry"], ["run"]))
    app = mutated(pod(container(command=[], args=[])), lookup)["spec"]["containers"][0]
    assert app["command"] == [INIT, "--", "/entry"]
    assert app["args"] == ["run"]


def test_an_image_with_neither_entrypoint_nor_cmd_is_not_wrapped() -> None:
    mutation = mutate(pod(container()), SETTINGS, images(app=([], [])))
    assert [(d.outcome, d.reason) for d in mutation.decisions] == [
        ("failed", "image has no ENTRYPOINT or CMD")
    ]


GRACE = {"podinit.dev/grace": "5"}  # makes podinit add PODINIT_GRACE to the container's env
POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def test_the_pods_own_variable_references_still_expand_when_podinit_adds_its_env() -> None:
    """Only references to the PODINIT_* variables podinit adds are escaped: `$(POD_IP)` is the
    pod's, and the kubelet must still expand it."""
    app = container(command=["serve", "--bind=$(POD_IP):80"], args=["$(POD_IP)"], env=[POD_IP])
    result = mutated(pod(app, annotations=GRACE))["spec"]["containers"][0]
    assert result["command"] == [INIT, "--", "serve", "--bind=$(POD_IP):80"]
    assert result["args"] == ["$(POD_IP)"]
    assert result["env"] == [POD_IP, {"name": "PODINIT_GRACE", "value": "5"}]


@pytest.mark.parametrize(
    ("written", "shielded"),
    [
        ("$(PODINIT_GRACE)", "$$(PODINIT_GRACE)"),
        ("x$(PODINIT_GRACE)y$(PODINIT_GRACE)", "x$$(PODINIT_GRACE)y$$(PODINIT_GRACE)"),
        ("$()$(PODINIT_GRACE)", "$()$$(PODINIT_GRACE)"),
        ("$(POD_IP)$(PODINIT_GRACE)", "$(POD_IP)$$(PODINIT_GRACE)"),
        ("$$(PODINIT_GRACE)", "$$(PODINIT_GRACE)"),
        ("$$$(PODINIT_GRACE)", "$$$$(PODINIT_GRACE)"),
        ("$x$(PODINIT_GRACE)", "$x$$(PODINIT_GRACE)"),
        ("$(PODINIT_GRACE", "$(PODINIT_GRACE"),
        ("$(PODINIT_GRACE))", "$$(PODINIT_GRACE))"),
        ("$", "$"),
        ("a$", "a$"),
        ("$(PODINIT_GRACEX)", "$(PODINIT_GRACEX)"),
    ],
)
def test_a_reference_to_a_variable_podinit_adds_reaches_the_app_as_written(
    written: str, shielded: str
) -> None:
    """The kubelet reads `$$` as `$`, so the escaped text expands to what the pod wrote."""
    app = container(command=["echo", written], env=[POD_IP])
    result = mutated(pod(app, annotations=GRACE))["spec"]["containers"][0]
    assert result["command"] == [INIT, "--", "echo", shielded]


def test_a_pod_that_defines_a_podinit_variable_itself_keeps_its_references() -> None:
    """The pod's own PODINIT_GRACE stays in force: podinit adds none, and shields nothing."""
    env = [{"name": "PODINIT_GRACE", "value": "9"}]
    app = container(command=["echo", "$(PODINIT_GRACE)"], env=env)
    result = mutated(pod(app, annotations=GRACE))["spec"]["containers"][0]
    assert result["command"] == [INIT, "--", "echo", "$(PODINIT_GRACE)"]
    assert result["env"] == env
