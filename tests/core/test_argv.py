"""The four Kubernetes command/args cases, and `$` escaping of strings taken from the image."""

from __future__ import annotations

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
