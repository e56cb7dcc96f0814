"""Containers that already run an init: the argv[0] basenames podinit leaves alone, and the check.

A container whose effective argv starts with an init or a process supervisor (tini, dumb-init,
s6, supervisord, ...) already has a PID 1 that forwards signals and reaps: wrapping it would
put two inits in a row. `knownInits` replaces the list below (config.py reads its default here).
Podinit's own wrapping (`/podinit/podinit --`) is recognised by `argv.is_wrapped`.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re

# fnmatch patterns of argv[0] basenames that already are an init or a process supervisor.
DEFAULT_KNOWN_INITS: tuple[str, ...] = (
    "tini",
    "tini-static*",
    "dumb-init",
    "catatonit",
    "docker-init",
    "podinit",
    "s6-svscan",
    "s6-linux-init*",
    "runsvdir",
    "runit",
    "supervisord",
    "systemd",
    "init",
    "pid1",
)


@functools.lru_cache(maxsize=8)
def _pattern(known_inits: tuple[str, ...]) -> re.Pattern[str]:
    """All patterns as one regex: checked for every container of every admission."""
    return re.compile("|".join(fnmatch.translate(p) for p in known_inits) or "(?!)")


def runs_init(argv: list[str], known_inits: tuple[str, ...]) -> str | None:
    """The skip reason when argv[0] already is an init or supervisor, else None. `argv` is not
    empty: `decide` fails a container without one before asking."""
    name = posixpath.basename(argv[0])
    return f"already runs an init ({name})" if _pattern(known_inits).match(name) else None
