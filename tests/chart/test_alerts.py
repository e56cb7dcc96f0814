"""The chart's alerts: the PrometheusRule rendered by helm, checked by `promtool check rules` and
unit-tested by `promtool test rules` on the synthetic series of tests/chart/alerts/*_test.yaml
(promtool: Debian package prometheus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import Render, kinds, one
from tests.unavailable import require_tool

ALERTS = Path(__file__).parent / "alerts"
ON = "metrics.prometheusRule.enabled=true"

# Each unit-test file with the values its rules are rendered with: (helm --set, namespace).
RENDERS: dict[str, tuple[list[str], str]] = {
    "defaults_test.yaml": ([ON], "podinit"),
    "tuned_test.yaml": (
        [
            ON,
            "config.timeoutSeconds=10",
            "metrics.prometheusRule.thresholds.certificateExpiryDays=30",
            "metrics.prometheusRule.additionalRuleLabels.team=platform",
            "metrics.prometheusRule.runbookUrl=https://docs.example/operating",
        ],
        "platform",
    ),
}


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


def rule_groups(render: Render, test_file: str) -> list[dict[str, Any]]:
    sets, namespace = RENDERS[test_file]
    groups: list[dict[str, Any]] = one(render(sets, namespace=namespace), "PrometheusRule")["spec"][
        "groups"
    ]
    return groups


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


@pytest.mark.parametrize("test_file", RENDERS)
def test_promtool_accepts_the_rendered_rules(
    render: Render, promtool: str, test_file: str, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, rule_groups(render, test_file))
    output = run_promtool(promtool, "check", "rules", str(rules), cwd=tmp_path)
    assert f"SUCCESS: {len(alert_names(rule_groups(render, test_file)))} rules found" in output


@pytest.mark.parametrize("test_file", RENDERS)
def test_each_alert_fires_and_stays_quiet_on_synthetic_series_as_its_unit_tests_say(
    render: Render, promtool: str, test_file: str, tmp_path: Path
) -> None:
    write_rules(tmp_path, rule_groups(render, test_file))
    shutil.copy(ALERTS / test_file, tmp_path / test_file)
    output = run_promtool(promtool, "test", "rules", test_file, cwd=tmp_path)
    # promtool only warns about a rule file it cannot find, and then every "no alert" case passes
    assert "WARNING" not in output and "SUCCESS" in output, output


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not(
    render: Render,
) -> None:
    tests = yaml.safe_load((ALERTS / "defaults_test.yaml").read_text())["tests"]
    firing, quiet = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = alert_names(rule_groups(render, "defaults_test.yaml"))
    assert firing == alerts, "alerts without a case that fires them, or cases of no alert"
    assert quiet == alerts, "alerts without a case just on the quiet side of their threshold"


def test_the_test_files_are_listed_with_the_values_they_test(render: Render) -> None:
    assert {p.name for p in ALERTS.glob("*_test.yaml")} == set(RENDERS)


def test_the_prometheus_rule_is_optional_and_carries_the_labels_a_prometheus_selects_by(
    render: Render,
) -> None:
    assert "PrometheusRule" not in kinds(render())
    assert "PrometheusRule" not in kinds(
        render([ON, "server.enabled=false", "webhook.url=https://podinit.example/mutate"])
    )
    rule = one(render([ON, "metrics.prometheusRule.labels.release=monitoring"]), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    assert rule["metadata"]["namespace"] == "podinit"


def test_an_own_selector_replaces_job_and_namespace_in_every_podinit_expression(
    render: Render,
) -> None:
    selector = 'service="hooks",cluster="eu1"'
    escaped = selector.replace(",", "\\,")  # --set splits on unescaped commas
    [group] = one(render([ON, f"metrics.prometheusRule.selector={escaped}"]), "PrometheusRule")[
        "spec"
    ]["groups"]
    for rule in group["rules"]:
        if "podinit_" in rule["expr"] or "up{" in rule["expr"]:
            assert selector in rule["expr"] and 'job="podinit"' not in rule["expr"], rule
