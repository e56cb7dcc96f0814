"""Pod annotations podinit reads and writes, and the init options they carry as PODINIT_* env."""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIX = "podinit.dev/"
INJECT = PREFIX + "inject"  # "false" opts the pod out
SKIP_CONTAINERS = PREFIX + "skip-containers"  # "a,b" opts single containers out
INJECT_INIT_CONTAINERS = PREFIX + "inject-init-containers"  # "true" wraps ordinary initContainers
STATUS = PREFIX + "status"  # written by podinit: JSON of what was done and why
MIRROR = "kubernetes.io/config.mirror"

_SECONDS = re.compile(r"^\d{1,5}(\.\d{1,3})?$")
_EXIT_PAIR = re.compile(r"^(\d{1,3}):(\d{1,3})$")
_SIGNAL_NAMES = frozenset(
    [
        "HUP",
        "INT",
        "QUIT",
        "ILL",
        "TRAP",
        "ABRT",
        "BUS",
        "FPE",
        "KILL",
        "USR1",
        "SEGV",
        "USR2",
        "PIPE",
        "ALRM",
        "TERM",
        "STKFLT",
        "CHLD",
        "CONT",
        "STOP",
        "TSTP",
        "TTIN",
        "TTOU",
        "URG",
        "XCPU",
        "XFSZ",
        "VTALRM",
        "PROF",
        "WINCH",
        "IO",
        "POLL",
        "PWR",
        "SYS",
    ]
)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class BadOption(ValueError):
    """An option annotation's value cannot be given to the init; the message names it."""


def is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def is_false(value: str) -> bool:
    return value.strip().lower() in _FALSE


def _is_signal(token: str, *, allow_zero: bool) -> bool:
    name = token.upper().removeprefix("SIG")
    if name in _SIGNAL_NAMES:
        return True
    if token.isdigit():
        return (allow_zero and int(token) == 0) or 1 <= int(token) <= 64
    return False


def _seconds(key: str, value: str) -> str:
    if not _SECONDS.match(value):
        raise BadOption(f"{key}: {value!r} is not a number of seconds (e.g. 5 or 2.5)")
    return value


def _rewrite(key: str, value: str) -> str:
    items = [item.strip() for item in value.split(",")]
    for item in items:
        source, sep, target = item.partition(":")
        if (
            not sep
            or not _is_signal(source, allow_zero=False)
            or not _is_signal(target, allow_zero=True)
        ):
            raise BadOption(f"{key}: {item!r} is not SIGNAL:SIGNAL (e.g. TERM:QUIT, HUP:0)")
    return ",".join(items)


def _remap_exit(key: str, value: str) -> str:
    items = [item.strip() for item in value.split(",")]
    for item in items:
        match = _EXIT_PAIR.match(item)
        if not match or int(match[1]) > 255 or int(match[2]) > 255:
            raise BadOption(f"{key}: {item!r} is not CODE:CODE with codes 0-255 (e.g. 143:0)")
    return ",".join(items)


def _flag(key: str, value: str) -> str | None:
    if is_true(value):
        return "1"
    if is_false(value):
        return None
    raise BadOption(f"{key}: {value!r} is not true or false")


# annotation -> (env variable, validator returning the env value or None for "leave unset")
_OPTIONS = {
    PREFIX + "grace": ("PODINIT_GRACE", _seconds),
    PREFIX + "term-delay": ("PODINIT_TERM_DELAY", _seconds),
    PREFIX + "rewrite": ("PODINIT_REWRITE", _rewrite),
    PREFIX + "remap-exit": ("PODINIT_REMAP_EXIT", _remap_exit),
    PREFIX + "verbose": ("PODINIT_VERBOSE", _flag),
    PREFIX + "single-child": ("PODINIT_SINGLE_CHILD", _flag),
}
OPTION_ANNOTATIONS = tuple(_OPTIONS)


def init_env(annotations: Mapping[str, str]) -> list[tuple[str, str]]:
    """The PODINIT_* variables the option annotations ask for, in a stable order."""
    env: list[tuple[str, str]] = []
    for key, (variable, validate) in _OPTIONS.items():
        if key in annotations:
            value = validate(key, annotations[key].strip())
            if value is not None:
                env.append((variable, value))
    return env


def skip_list(annotations: Mapping[str, str]) -> frozenset[str]:
    raw = annotations.get(SKIP_CONTAINERS, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())
