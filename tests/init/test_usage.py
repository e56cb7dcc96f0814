"""Bad input: one line naming the problem and exit 2, never a crash."""

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scale import SCALE

from .conftest import Init

BAD_ARGS = [
    (["--frobnicate", "true"], "'--frobnicate'"),
    (["--rewrite", "TERM", "true"], "'TERM'"),
    (["--rewrite", "NOPE:QUIT", "true"], "'NOPE:QUIT'"),
    (["--rewrite", "TERM:QUIT:HUP", "true"], "'TERM:QUIT:HUP'"),
    (["--rewrite", "KILL:TERM", "true"], "'KILL:TERM'"),
    (["--rewrite", "TERM:65", "true"], "'TERM:65'"),
    (["--remap-exit", "256:0", "true"], "'256:0'"),
    (["--remap-exit", "-1:0", "true"], "'-1:0'"),
    (["--grace", "-1", "true"], "'-1'"),
    (["--grace", "1.2.3", "true"], "'1.2.3'"),
    (["--term-delay", "", "true"], "--term-delay"),
    (["--grace"], "'--grace' needs a value"),
    ([], "missing command"),
    (["-v", "--"], "missing command"),
    (["install"], "install DEST"),
]
BAD_ENV = [
    ("PODINIT_REWRITE", "TERM"),
    ("PODINIT_REMAP_EXIT", "143:zero"),
    ("PODINIT_GRACE", "5s"),
    ("PODINIT_TERM_DELAY", "1e3"),
    ("PODINIT_VERBOSE", "yes"),
    ("PODINIT_SINGLE_CHILD", "2"),
]


def assert_usage_error(init: Init, needle: str) -> None:
    assert init.wait() == 2
    assert len(init.err_lines) == 1, init.err_lines
    assert init.err_lines[0].startswith("podinit: ")
    assert needle in init.err_lines[0]


@pytest.mark.parametrize(("args", "needle"), BAD_ARGS)
def test_bad_arguments_are_a_one_line_usage_error(run: Any, args: list[str], needle: str) -> None:
    assert_usage_error(run(args, pid1=False), needle)


@pytest.mark.parametrize(("name", "value"), BAD_ENV)
def test_bad_environment_values_name_the_variable(run: Any, name: str, value: str) -> None:
    assert_usage_error(run(["true"], pid1=False, env={name: value}), name)


def test_help_and_version_go_to_stdout(run: Any) -> None:
    init = run(["--help"], pid1=False)
    assert init.line().startswith("usage: podinit")
    assert init.wait() == 0
    init = run(["--version"], pid1=False)
    assert init.line().startswith("podinit ")
    assert init.wait() == 0


def test_good_values_in_every_form_are_accepted(run: Any) -> None:
    args = ["-v", "--single-child", "--rewrite=SIGTERM:quit", "--rewrite", "1:0"]
    args += ["--remap-exit=143:0", "--term-delay", "0.25", "--grace=2.5", "--", "true"]
    env = {"PODINIT_REWRITE": "", "PODINIT_VERBOSE": "0", "PODINIT_GRACE": "0"}
    init = run(args, pid1=False, env=env)
    assert init.wait() == 0


@settings(
    max_examples=max(10, int(60 * SCALE)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    option=st.sampled_from(["--rewrite", "--remap-exit", "--grace", "--term-delay", "--x"]),
    value=st.text(alphabet=string.printable.strip() + "é", max_size=40),
)
def test_any_option_value_gives_success_or_a_usage_error(option: str, value: str) -> None:
    init = Init([option, value, "true"], pid1=False)
    code = init.wait()
    assert code in (0, 2), (option, value, init.err_lines)
    assert len(init.err_lines) == (code == 2)


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_work_despite_a_bad_environment_value(run: Any, option: str) -> None:
    init = run([option], pid1=False, env={"PODINIT_GRACE": "5s"})
    assert init.line().startswith(("usage: podinit", "podinit "))
    assert init.wait() == 0
    assert init.err_lines == []
