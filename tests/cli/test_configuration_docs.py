"""docs/configuration.md documents every setting under both of its names."""

from __future__ import annotations

from pathlib import Path

from webhook.config import Config, camel

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def test_every_setting_is_documented_with_its_file_and_env_names() -> None:
    missing = [
        name
        for name in Config.model_fields
        if f"| `{camel(name)}` | `PODINIT_{name.upper()}` |" not in DOC
    ]
    assert missing == []


def test_the_docs_name_no_setting_that_does_not_exist() -> None:
    rows = [line.split("`")[1] for line in DOC.splitlines() if line.startswith("| `")]
    known = {camel(name) for name in Config.model_fields}
    assert [row for row in rows if row not in known] == []
