"""YAML read and written with the rules kubectl decodes by (go-yaml, YAML 1.1); the end-to-end
test tests/e2e/test_inject_apply.py checks the same against the real apiserver."""

from __future__ import annotations

import io
import math

import pytest

from webhook.cli import kubeyaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("y", True),
        ("N", False),
        ("off", False),
        ("1e3", 1000.0),
        ("08", 8.0),  # not an octal digit: Go reads a float
        ("017", 15),
        ("0o17", 15),
        ("0x1F", 31),
        ("-0b101", -5),
        ("1_000", 1000),
        (".inf", math.inf),
        ("12:30", "12:30"),  # base 60 in PyYAML only
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),  # kept as text
        ("2024-05-01", "2024-05-01"),
        ("~", None),
    ],
)
def test_plain_scalars_are_read_as_kubectl_reads_them(text: str, value: object) -> None:
    assert kubeyaml.load(f"key: {text}\n") == {"key": value}


@pytest.mark.parametrize("text", ["Y", "n", "yes", "on", "1e3", "0o022", "017", "1_000", "~", ""])
def test_strings_kubectl_would_read_as_another_type_are_written_quoted(text: str) -> None:
    out = io.StringIO()
    kubeyaml.dump_all([{"key": text}], out)
    assert out.getvalue() in (f"key: '{text}'\n", f'key: "{text}"\n')
    assert kubeyaml.load(out.getvalue()) == {"key": text}


def test_aliases_become_independent_copies_and_are_never_written() -> None:
    loaded = kubeyaml.load("a: &shared [1]\nb: *shared\nc: {<<: {x: [2]}, z: 3}\n")
    loaded["a"].append(9)
    assert loaded == {"a": [1, 9], "b": [1], "c": {"x": [2], "z": 3}}
    shared = [1]
    out = io.StringIO()
    kubeyaml.dump_all([{"a": shared, "b": shared}], out)
    assert "&" not in out.getvalue() and "*" not in out.getvalue()


def test_json_text_is_read_as_json_with_its_escapes() -> None:
    assert kubeyaml.load('{\n\t"team": "\\ud83d\\ude80"\n}') == {"team": "\U0001f680"}


def test_keys_are_strings_as_kubernetes_converts_them() -> None:
    assert kubeyaml.load("y: 1\n2: two\n~: none\n") == {"true": 1, "2": "two", "null": "none"}
