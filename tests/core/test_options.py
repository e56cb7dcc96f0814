"""The option annotations: what the init accepts is passed on as PODINIT_* env as written
(trimmed), and what it would refuse leaves the pod unwrapped with the annotation named."""

from __future__ import annotations

import pytest

from tests.core.helpers import container, mutated, pod, status


def _env(key: str, value: str) -> object:
    result = mutated(pod(container(command=["app"]), annotations={f"podinit.dev/{key}": value}))
    return result["spec"]["containers"][0].get("env")


def _refused(key: str, value: str) -> bool:
    result = mutated(pod(container(command=["app"]), annotations={f"podinit.dev/{key}": value}))
    return status(result).get("failed", "").startswith(f"bad annotation podinit.dev/{key}:")


@pytest.mark.parametrize(
    ("value", "passed"),
    [
        ("SIGTERM:sigquit, 15:64, HUP:0", "SIGTERM:sigquit,15:64,HUP:0"),
        ("INT:SIGRTMIN", None),
        ("term:io", "term:io"),
    ],
)
def test_signal_rewrites_by_name_or_number_up_to_64_are_passed_on(
    value: str, passed: str | None
) -> None:
    if passed is None:  # not a name the init knows
        assert _refused("rewrite", value)
    else:
        assert _env("rewrite", value) == [{"name": "PODINIT_REWRITE", "value": passed}]


@pytest.mark.parametrize(
    "value",
    ["0:TERM", "NOPE:TERM", "TERM:65", "SIG:TERM", "TERM:QUIT:HUP", "TERM:QUIT,", "99:TERM"],
)
def test_a_signal_rewrite_the_init_would_refuse_leaves_the_pod_unwrapped(value: str) -> None:
    assert _refused("rewrite", value)


def test_exit_code_remaps_up_to_255_are_passed_on_as_a_list() -> None:
    assert _env("remap-exit", "255:255, 143:0") == [
        {"name": "PODINIT_REMAP_EXIT", "value": "255:255,143:0"}
    ]


@pytest.mark.parametrize("value", ["256:0", "0:256", "143:0 1:2", "143:0;1:2", "143"])
def test_an_exit_code_remap_the_init_would_refuse_leaves_the_pod_unwrapped(value: str) -> None:
    assert _refused("remap-exit", value)


@pytest.mark.parametrize(
    ("key", "value", "variable", "passed"),
    [
        ("grace", " 2.5 ", "PODINIT_GRACE", "2.5"),
        ("single-child", "YES", "PODINIT_SINGLE_CHILD", "1"),
        ("verbose", "1", "PODINIT_VERBOSE", "1"),
    ],
)
def test_other_options_are_passed_on_trimmed(
    key: str, value: str, variable: str, passed: str
) -> None:
    assert _env(key, value) == [{"name": variable, "value": passed}]


@pytest.mark.parametrize("value", ["false", " No ", "0"])
def test_a_pod_opted_out_in_any_spelling_gets_no_patch(value: str) -> None:
    original = pod(container(command=["app"]), annotations={"podinit.dev/inject": value})
    assert mutated(original) == original


@pytest.mark.parametrize("value", ["true", "enabled", ""])
def test_an_inject_annotation_that_is_not_false_leaves_the_pod_wrapped(value: str) -> None:
    original = pod(container(command=["app"]), annotations={"podinit.dev/inject": value})
    assert status(mutated(original))["containers"] == {"app": "injected"}
