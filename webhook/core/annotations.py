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

# ASCII digits only: the init parses bytes '0'-'9', and Python's \d would accept others.
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,9})?")
_EXIT_PAIR = re.compile(r"([0-9]{1,3}):([0-9]{1,3})")
_NUMBER = re.compile(r"[0-9]{1,2}")
# The names the init knows (signal(7)), with their Linux numbers.
_SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip
# Never forwarded by the init, so it refuses to rewrite them: the uncatchable, SIGCHLD and
# the synchronous faults.
_NOT_FORWARDED = frozenset({9, 19, 17, 4, 5, 7, 8, 11, 31})
_MAX_SIGNAL = 64
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class BadOption(ValueError):
    """An option annotation's value cannot be given to the init; the message names it."""


def is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def is_false(value: str) -> bool:
    return value.strip().lower() in _FALSE


def _signal(token: str) -> int | None:
    """`TERM`, `SIGTERM`, `term` or `15` as a number; None when the init would not know it."""
    if _NUMBER.fullmatch(token):
        number = int(token)
        return number if number <= _MAX_SIGNAL else None
    name = token.upper()
    return _SIGNALS.get(name[3:] if name.startswith("SIG") and len(name) > 3 else name)


def _seconds(key: str, value: str) -> str:
    if not _SECONDS.fullmatch(value):
        raise BadOption(f"{key}: {value!r} is not a number of seconds (e.g. 5 or 2.5)")
    return value


def _rewrite(key: str, value: str) -> str:
    items = [item.strip() for item in value.split(",")]
    for item in items:
        source, sep, target = item.partition(":")
        number = _signal(source)
        if not sep or number in (None, 0) or _signal(target) is None:
            raise BadOption(f"{key}: {item!r} is not SIGNAL:SIGNAL (e.g. TERM:QUIT, HUP:0)")
        if number in _NOT_FORWARDED:
            raise BadOption(f"{key}: {item!r}: signal {source} is never forwarded")
    return ",".join(items)


def _remap_exit(key: str, value: str) -> str:
    items = [item.strip() for item in value.split(",")]
    for item in items:
        match = _EXIT_PAIR.fullmatch(item)
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
