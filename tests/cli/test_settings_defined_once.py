"""The core's InjectSettings is the one home of the injection settings and their defaults: each
is a config key (webhook/config.py) taking the core's default, a row of docs/configuration.md and
an entry of the chart's values schema, unless it is listed here as internal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from webhook.config import Config, camel
from webhook.core import InjectSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "configuration.md").read_text()
SCHEMA = json.loads((ROOT / "charts" / "podinit" / "values.schema.json").read_text())
CHART_CONFIG = SCHEMA["properties"]["config"]["properties"]

# Core settings users do not set, each with the reason.
INTERNAL: dict[str, str] = {}

CORE = [f.name for f in dataclasses.fields(InjectSettings)]
CONFIGURABLE = [name for name in CORE if name not in INTERNAL]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*Config.model_fields, "port"]:
        monkeypatch.delenv(f"PODINIT_{name.upper()}", raising=False)


def test_internal_settings_exist_in_the_core_and_have_no_config_key() -> None:
    assert [name for name in INTERNAL if name not in CORE] == []
    assert [name for name in INTERNAL if name in Config.model_fields] == []


@pytest.mark.parametrize("name", CONFIGURABLE)
def test_every_core_setting_has_a_config_key_a_docs_row_and_a_chart_schema_entry(
    name: str,
) -> None:
    assert name in Config.model_fields, f"{name}: no config key in webhook/config.py"
    assert f"| `{camel(name)}` | `PODINIT_{name.upper()}` |" in DOC, f"{name}: no docs row"
    assert camel(name) in CHART_CONFIG, f"{name}: not in the chart schema (make deploy-manifests)"


def test_the_configs_defaults_are_the_cores() -> None:
    assert Config().inject_settings() == InjectSettings()


def test_the_configs_defaults_are_valid_config_values() -> None:
    """A core default the config's own type refuses (say a pull policy it does not list)."""
    defaults = Config()
    assert Config(**defaults.model_dump()) == defaults


def _doc_default(name: str) -> str:
    row = next(line for line in DOC.splitlines() if line.startswith(f"| `{camel(name)}` |"))
    return row.split(" | ")[2]


def _written(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


@pytest.mark.parametrize("name", CONFIGURABLE)
def test_the_docs_and_the_chart_schema_show_the_configs_default(name: str) -> None:
    default = Config.model_fields[name].default
    assert CHART_CONFIG[camel(name)]["default"] == default
    if isinstance(default, str | int | bool):
        assert _doc_default(name) == _written(default)
