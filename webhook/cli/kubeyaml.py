"""YAML read and written as Kubernetes reads it, so `podinit inject | kubectl apply -f -` sends
what `kubectl apply -f` of the original would have, plus podinit's changes.

kubectl decodes YAML with go-yaml's YAML 1.1 rules (sigs.k8s.io/yaml), which differ from
PyYAML's: `y`/`n` are booleans, `1e3` is a number, `0o17` an octal, while `12:30` (base 60
for PyYAML) and timestamps stay strings. The loader resolves plain scalars as go-yaml does; the
dumper quotes every string that would otherwise come back as something else. Aliases are
expanded into independent copies on reading and never written, so changing one container
cannot change another that shared a YAML anchor with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

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
_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}


def _go_resolvers(base: type[yaml.SafeLoader] | type[yaml.SafeDumper]) -> dict[Any, Any]:
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


class _Loader(yaml.SafeLoader):
    yaml_implicit_resolvers = _go_resolvers(yaml.SafeLoader)

    def go_bool(self, node: yaml.ScalarNode) -> bool:
        return str(self.construct_scalar(node)) in _TRUE

    def go_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if digits.startswith(("0b", "0x", "0o")):
            return sign * int(digits, 0)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)  # a leading 0 is octal, as in Go
        return sign * int(digits)

    def go_float(self, node: yaml.ScalarNode) -> float:
        text = str(self.construct_scalar(node)).lower()
        if text.endswith(".inf"):
            return float("-inf") if text.startswith("-") else float("inf")
        return float("nan") if text == ".nan" else float(text)

    def text(self, node: yaml.ScalarNode) -> str:
        return str(self.construct_scalar(node))


_Loader.add_constructor(_BOOL, _Loader.go_bool)
_Loader.add_constructor(_INT, _Loader.go_int)
_Loader.add_constructor(_FLOAT, _Loader.go_float)
_Loader.add_constructor(_TIMESTAMP, _Loader.text)  # an explicit !!timestamp keeps its text too


class _Dumper(yaml.SafeDumper):
    # The dumper quotes a string whenever its resolvers would read it back as another type.
    yaml_implicit_resolvers = _go_resolvers(yaml.SafeDumper)

    def ignore_aliases(self, data: Any) -> bool:
        return True


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


def load_all(text: str) -> Iterator[Any]:
    """The documents of a YAML stream, or the one value of a JSON text (JSON allows tabs,
    which YAML does not, and its surrogate-pair escapes are one character)."""
    if text.lstrip().startswith(("{", "[")):
        try:
            yield json.loads(text)
            return
        except ValueError:
            pass  # YAML flow style, or broken: the YAML parser says where
    for document in yaml.load_all(text, Loader=_Loader):
        try:
            yield _independent(document)
        except RecursionError:
            raise yaml.YAMLError("an alias refers to the node that contains it") from None


def load(text: str) -> Any:
    documents = list(load_all(text))
    return documents[0] if documents else None


def dump_all(documents: list[Any], out: TextIO) -> None:
    yaml.dump_all(
        documents,
        out,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=len(documents) > 1,
    )
