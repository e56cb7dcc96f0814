"""The webhook accepts exactly the option values the init accepts: an annotation that passed
admission but made the init exit 2 would keep the pod from starting."""

from __future__ import annotations

import os
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.core.annotations import BadOption, init_env

from .conftest import BIN

SIGNAL_WORDS = ["TERM", "sigterm", "Hup", "KILL", "STOP", "CHLD", "SEGV", "IOT", "POLL", "RTMIN"]
tokens = st.one_of(
    st.sampled_from(SIGNAL_WORDS),
    st.integers(0, 70).map(str),
    st.sampled_from(["", "\u0661\u0662", "\u00b2", " 15", "1.5", "-1", "0x1"]),
)
pairs = st.tuples(tokens, tokens).map(lambda p: f"{p[0]}:{p[1]}")
lists = st.lists(st.one_of(pairs, tokens), min_size=1, max_size=3).map(",".join)
seconds = st.one_of(
    st.from_regex(r"[0-9]{1,7}(\.[0-9]{0,10})?", fullmatch=True),
    st.sampled_from(["", ".5", "5.", "\u0661", "1e3", " 5", "+1"]),
)
ANNOTATIONS = {
    "podinit.dev/rewrite": lists,
    "podinit.dev/remap-exit": st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=1, max_size=3
    ).map(lambda items: ",".join(f"{a}:{b}" for a, b in items)),
    "podinit.dev/grace": seconds,
    "podinit.dev/term-delay": seconds,
}


def run_true(env: list[tuple[str, str]]) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    environment.update(env)
    return subprocess.run(
        [str(BIN), "--", "true"], env=environment, capture_output=True, timeout=30, check=False
    )


def init_accepts(env: list[tuple[str, str]]) -> bool:
    result = run_true(env)
    # A refused option is one line on stderr and exit 2; an accepted one runs `true`, whose 0
    # the remap options may turn into any code, silently.
    return result.stderr == b""


@given(key=st.sampled_from(sorted(ANNOTATIONS)), data=st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_option_value_the_webhook_accepts_starts_the_init(
    key: str, data: st.DataObject
) -> None:
    value = data.draw(ANNOTATIONS[key])
    try:
        env = init_env({key: value})
    except BadOption:
        return
    assert init_accepts(env), (
        f"{key}: {value!r} passed the webhook as {env} but the init refused it"
    )


def test_the_values_the_docs_show_are_accepted_by_both() -> None:
    examples = {
        "podinit.dev/grace": "2.5",
        "podinit.dev/term-delay": "5",
        "podinit.dev/rewrite": "TERM:QUIT,HUP:0",
        "podinit.dev/remap-exit": "143:0",
        "podinit.dev/verbose": "true",
        "podinit.dev/single-child": "true",
    }
    result = run_true(init_env(examples))
    assert result.returncode == 0, result.stderr
