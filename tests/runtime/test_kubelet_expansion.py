"""The kubelet's `$(VAR)` expansion, and that the wrapped argv expands the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.ocispec import expand
from e2e.runtime import Runtime, run_pod, run_unmutated_pod

from .conftest import app_pod, stored

ENV = {"GREETING": "hello", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(GREETING)", "hello"),
        ("say $(GREETING)!", "say hello!"),
        ("$(EMPTY)x", "x"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(GREETING)", "$(GREETING)"),
        ("$$$(GREETING)", "$hello"),
        ("a$$b", "a$b"),
        ("$$$$", "$$"),
        ("$HOME", "$HOME"),
        ("$(GREETING", "$(GREETING"),
        ("trailing $", "trailing $"),
    ],
)
def test_variables_expand_as_the_kubelet_expands_them(text: str, expanded: str) -> None:
    assert expand(text, ENV) == expanded


def test_the_wrapped_command_prints_what_the_unwrapped_one_prints(
    runtime: Runtime, podinit: Path
) -> None:
    original = app_pod(
        ["echo", "$(GREETING)", "$$(GREETING)", "$(MISSING)", "a$$b", "$(WHO)"],
        env=[{"name": "GREETING", "value": "hello"}, {"name": "WHO", "value": "$(GREETING) pod"}],
    )
    outputs = []
    with run_unmutated_pod(original, runtime=runtime) as running:
        assert running.app().wait(60) == 0
        outputs.append(running.app().output())
    with run_pod(stored(original), podinit, runtime=runtime) as running:
        assert running.app().wait(60) == 0
        outputs.append(running.app().output())
    assert outputs == ["hello $(GREETING) $(MISSING) a$b hello pod\n"] * 2
