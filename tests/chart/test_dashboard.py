"""The chart's Grafana dashboard: a ConfigMap for Grafana's sidecar, only when enabled, whose
queries go to the data source the viewer picks (no data source UID of anyone's Grafana)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.chart.conftest import Render, kinds, one

ON = "metrics.dashboard.enabled=true"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboard(render: Render, *sets: str) -> dict[str, Any]:
    configmap = one(render([ON, *sets]), "ConfigMap", "podinit-dashboard")
    loaded: dict[str, Any] = json.loads(configmap["data"]["podinit.json"])
    return loaded


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_optional_and_labelled_for_the_grafana_sidecar(render: Render) -> None:
    assert not [o for o in render() if o["metadata"]["name"] == "podinit-dashboard"]
    disabled_server = render([ON, "server.enabled=false", "webhook.url=https://x.example/mutate"])
    assert kinds(disabled_server) == {"MutatingWebhookConfiguration"}
    configmap = one(render([ON]), "ConfigMap", "podinit-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "podinit"
    elsewhere = one(
        render(
            [
                ON,
                "metrics.dashboard.namespace=monitoring",
                "metrics.dashboard.annotations.grafana_folder=Platform",
            ]
        ),
        "ConfigMap",
        "podinit-dashboard",
    )
    assert elsewhere["metadata"]["namespace"] == "monitoring"
    assert elsewhere["metadata"]["annotations"] == {"grafana_folder": "Platform"}


def test_every_query_uses_the_data_source_variable_and_no_fixed_uid(render: Render) -> None:
    board = dashboard(render)
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["name"] == "datasource" and variable["query"] == "prometheus"
    datasources = [value for key, value in walk(board) if key == "datasource"]
    assert len(datasources) > len(board["panels"]), "panels and targets name their data source"
    assert all(value == DATASOURCE for value in datasources), datasources
    uids = {value for key, value in walk(board) if key == "uid"}
    assert uids == {"podinit", "${datasource}"}, "the dashboard's own uid and the variable only"


def test_panels_have_unique_ids_and_do_not_overlap_on_the_24_column_grid(render: Render) -> None:
    panels = dashboard(render)["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_the_dashboard_shows_what_an_operator_watches(render: Render) -> None:
    queries = "\n".join(exprs(dashboard(render)))
    for wanted in (
        "sum by (outcome) (rate(podinit_admissions_total",
        "sum by (outcome, reason) (rate(podinit_containers_total",
        "histogram_quantile(0.5, ",
        "histogram_quantile(0.9, ",
        "histogram_quantile(0.99, ",
        "sum by (result) (rate(podinit_registry_lookups_total",
        "podinit_image_cache_hits_total",
        "podinit_certificate_expiry_timestamp_seconds",
        "sum by (result) (rate(podinit_events_total",
        "sum by (exported_namespace, state) (podinit_pods_unwrapped{",
        "max by (state) (podinit_pods_unwrapped_oldest_seconds{",
        "sum by (action) (increase(podinit_reconcile_actions_total{",
    ):
        assert wanted in queries, wanted
    assert all('namespace="$namespace",job="$job"' in expr for expr in exprs(dashboard(render)))
