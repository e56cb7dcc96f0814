"""libyaml's parser and emitter (the default) and PyYAML's pure-Python ones (the fallback)
apply the same go-yaml rules: what one reads the other reads alike, and what either writes
both read back as the value written."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.cli import kubeyaml

pytestmark = pytest.mark.skipif(kubeyaml.LIBYAML is None, reason="PyYAML built without libyaml")
LIBYAML = kubeyaml.LIBYAML or kubeyaml.PURE_PYTHON  # for mypy; the mark skips without it
CODECS = {"libyaml": LIBYAML, "pure-python": kubeyaml.PURE_PYTHON}

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "manifests"  # beside the checkout, when there
# The MB-sized CRD bundles take seconds on the pure-Python path: `make bench-cli` compares the
# two paths' outputs on argo-cd's on every run instead.
MANIFESTS = sorted((ROOT / "tests" / "golden" / "testdata").rglob("*.yaml*")) + sorted(
    p for p in (CORPUS.glob("*.yaml") if CORPUS.is_dir() else []) if p.stat().st_size < 200_000
)

WORDS = """y Y n N yes No ON off true False ~ null Null
    1e3 -1E-3 .5 08 017 0o17 0x1F -0b101 1_000 +12 .inf -.Inf .nan 0
    12:30 1:20:30 2024-05-01 2024-05-01T10:00:00Z = <<"""
SCALARS = [
    *WORDS.split(),
    "", " lead", "trail ", "a: b", "- x", "# c", "'q'", '"d"', "line\nbreak",
    "x" * 200, "é ü 🚀", "\u2028", "\ufeff", "a\\b",
]  # fmt: skip


def dumped(values: list[Any], codec: kubeyaml.Codec) -> str:
    out = io.StringIO()
    kubeyaml.dump_all(values, out, codec)
    return out.getvalue()


def same(a: Any, b: Any) -> bool:
    """Equality with NaN equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_a_tab_inside_a_plain_scalar_is_text_on_the_libyaml_path_as_in_go_yaml() -> None:
    # go-yaml is a port of libyaml and reads it; PyYAML's Python scanner refuses it.
    assert kubeyaml.load("key: tab\tin\n", LIBYAML) == {"key": "tab\tin"}


@pytest.mark.parametrize("text", SCALARS)
def test_both_paths_read_a_plain_or_quoted_scalar_alike(text: str) -> None:
    for document in (f"key: {text}\n", f"key: '{text}'\n", f"{text}: v\n", f"- [{text}]\n"):
        results = {}
        for name, codec in CODECS.items():
            try:
                results[name] = ("ok", kubeyaml.load(document, codec))
            except Exception as error:  # both paths must refuse the same documents
                results[name] = ("error", type(error).__name__)
        assert same(results["libyaml"], results["pure-python"]) or (
            results["libyaml"][0] == results["pure-python"][0] == "error"
        ), (document, results)


@pytest.mark.parametrize("writer", CODECS)
@pytest.mark.parametrize("reader", CODECS)
def test_what_either_path_writes_either_reads_back(writer: str, reader: str) -> None:
    values = [{"s": SCALARS, "keyed": {text: text for text in SCALARS}}]
    assert same(kubeyaml.load(dumped(values, CODECS[writer]), CODECS[reader]), values[0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=4))
def test_any_string_written_by_libyaml_is_read_back_by_the_pure_python_path(
    texts: list[str],
) -> None:
    out = dumped([{"v": texts}], LIBYAML)
    assert kubeyaml.load(out, kubeyaml.PURE_PYTHON) == {"v": texts}


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_real_manifests_decode_alike_and_survive_either_emitter(manifest: Path) -> None:
    text = manifest.read_text()
    documents = list(kubeyaml.load_all(text, LIBYAML))
    assert same(documents, list(kubeyaml.load_all(text, kubeyaml.PURE_PYTHON)))
    for codec in CODECS.values():
        assert same(list(kubeyaml.load_all(dumped(documents, codec), codec)), documents)


def test_without_libyaml_the_pure_python_classes_are_the_default() -> None:
    code = (
        "import yaml\n"
        "yaml.__with_libyaml__ = False  # as in a PyYAML built without it\n"
        "from webhook.cli import kubeyaml\n"
        "assert kubeyaml.LIBYAML is None and kubeyaml.DEFAULT is kubeyaml.PURE_PYTHON\n"
        "assert kubeyaml.load('a: [y, 1e3, 12:30]') == {'a': [True, 1000.0, '12:30']}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
