"""YAML read and written as Kubernetes reads it, so `podinit inject | kubectl apply -f -` sends
what `kubectl apply -f` of the original would have, plus podinit's changes.

kubectl decodes YAML with go-yaml's YAML 1.1 rules (sigs.k8s.io/yaml), which differ from
PyYAML's: `y`/`n` are booleans, `1e3` is a number, `0o17` an octal, while `12:30` (base 60
for PyYAML) and timestamps stay strings. The loader resolves plain scalars as go-yaml does; the
dumper quotes every string that would otherwise come back as something else. Aliases are
expanded into independent copies on reading and never written, so changing one container
cannot change another that shared a YAML anchor with it.

The rules live in Python resolvers and constructors that both of PyYAML's implementations call
back into: libyaml's C parser and emitter (the default, `LIBYAML`) and PyYAML's pure-Python
ones (`PURE_PYTHON`, used when PyYAML was built without libyaml). Both read every document to
the same values, but for one case where libyaml, like go-yaml (a port of it), is right and
PyYAML's scanner refuses: a tab inside a plain scalar (`key: a<TAB>b`). Their output differs
only in where long double-quoted strings are folded (libyaml breaks them at spaces only),
which reads back to the same value. tests/cli/test_kube_yaml_paths.py holds them together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO, TypeAlias

import yaml

_STR, _BOOL, _INT, _FLOAT, _TIMESTAMP = (
    f"tag:yaml.org,2002:{name}" for name in ("str", "bool", "int", "float", "timestamp")
)
# go-yaml v2 (resolve.go): its boolean words, Go's integer literals, and its float syntax.
_GO_BOOL = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
                      r"|on|On|ON|off|Off|OFF)$")  # fmt: skip
_GO_INT = re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0[0-7_]*|[1-9][0-9_]*)$")
_GO_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
if TYPE_CHECKING:  # yaml.CSafeLoader exists only in a PyYAML built with libyaml
    _AnyLoader: TypeAlias = yaml.SafeLoader | yaml.CSafeLoader
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}


def _go_resolvers(base: type[yaml.resolver.BaseResolver]) -> dict[Any, Any]:
    """PyYAML's implicit resolvers with bool, int and float replaced by go-yaml's, and no
    timestamps (Kubernetes keeps their text)."""
    replaced = {_BOOL, _INT, _FLOAT, _TIMESTAMP}
    resolvers: dict[Any, Any] = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in replaced]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    for tag, regexp, firsts in (
        (_BOOL, _GO_BOOL, "yYnNtTfFoO"),
        (_INT, _GO_INT, "-+0123456789"),
        (_FLOAT, _GO_FLOAT, "-+.0123456789"),
    ):
        for first in firsts:
            resolvers.setdefault(first, []).append((tag, regexp))
    return resolvers


def _go_bool(loader: _AnyLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)) in _TRUE


def _go_int(loader: _AnyLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
    if digits.startswith(("0b", "0x", "0o")):
        return sign * int(digits, 0)
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits, 8)  # a leading 0 is octal, as in Go
    return sign * int(digits)


def _go_float(loader: _AnyLoader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text == ".nan" else float(text)


def _text(loader: _AnyLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _go_constructors(loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> None:
    loader.add_constructor(_BOOL, _go_bool)
    loader.add_constructor(_INT, _go_int)
    loader.add_constructor(_FLOAT, _go_float)
    loader.add_constructor(_TIMESTAMP, _text)  # an explicit !!timestamp keeps its text too


# The same resolvers and constructors on PyYAML's pure-Python parser and emitter and, when
# PyYAML was built with it, on libyaml's (`make bench-cli`: 3-4x less time for the whole CLI
# on a 2 MB manifest). The C classes call back into the Python resolver for every scalar, on
# reading (which tag) and on writing (whether a string needs quotes), and build values with
# the Python constructors, so the go-yaml rules hold on either path.
class _PyLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = _go_resolvers(yaml.SafeLoader)


class _PyDumper(yaml.SafeDumper):
    # The dumper quotes a string whenever its resolvers would read it back as another type.
    yaml_implicit_resolvers = _go_resolvers(yaml.SafeDumper)

    def ignore_aliases(self, data: Any) -> bool:
        return True


_go_constructors(_PyLoader)


class Codec(NamedTuple):
    loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
    dumper: type[yaml.SafeDumper] | type[yaml.CSafeDumper]


PURE_PYTHON = Codec(_PyLoader, _PyDumper)
LIBYAML: Codec | None = None

if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        yaml_implicit_resolvers = _go_resolvers(yaml.CSafeLoader)

    class _CDumper(yaml.CSafeDumper):
        yaml_implicit_resolvers = _go_resolvers(yaml.CSafeDumper)

        def ignore_aliases(self, data: Any) -> bool:
            return True

    _go_constructors(_CLoader)
    LIBYAML = Codec(_CLoader, _CDumper)

DEFAULT = LIBYAML or PURE_PYTHON


def _independent(value: Any) -> Any:
    """A copy in which no two places share a dict or list (YAML aliases share them), with
    every key a string, as Kubernetes converts YAML to JSON (`y: 1` is `{"true": 1}`)."""
    if isinstance(value, dict):
        return {_key(key): _independent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_independent(item) for item in value]
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    return json.dumps(key) if key is None or isinstance(key, bool | int | float) else str(key)


def load_all(text: str, codec: Codec = DEFAULT) -> Iterator[Any]:
    """The documents of a YAML stream, or the one value of a JSON text (JSON allows tabs,
    which YAML does not, and its surrogate-pair escapes are one character)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            yield json.loads(text)
            return
        except ValueError:
            pass  # YAML flow style, or broken: the YAML parser says where
    for document in yaml.load_all(text, Loader=codec.loader):
        try:
            yield _independent(document)
        except RecursionError:
            raise yaml.YAMLError("an alias refers to the node that contains it") from None


def load(text: str, codec: Codec = DEFAULT) -> Any:
    documents = list(load_all(text, codec))
    return documents[0] if documents else None


def dump_all(documents: list[Any], out: TextIO, codec: Codec = DEFAULT) -> None:
    yaml.dump_all(
        documents,
        out,
        Dumper=codec.dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=len(documents) > 1,
    )
