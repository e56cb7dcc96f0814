"""The alerts and the dashboard read only what podinit exports: every metric name their queries
name is one that a running `podinit serve` lists on /metrics after real admissions, or one
listed here as coming from elsewhere; and every family podinit exports is on the dashboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart.conftest import Render, one
from tests.chart.promql import metric_names
from tests.server.harness import Webhook, make_certs, review, run_webhook

ENABLED = ["metrics.prometheusRule.enabled=true", "metrics.dashboard.enabled=true"]

# Series the alerts and the dashboard read from others: Prometheus' own scrape health and
# kube-state-metrics' view of the webhook's Deployment.
EXTERNAL = frozenset({"up", "kube_deployment_status_replicas_available"})

# Names a family of each type is selected by, from the name on its TYPE line.
SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}

PODS: list[dict[str, Any]] = [
    # wrapped: a shell-form command
    {"containers": [{"name": "app", "image": "example/app:1", "command": ["sh", "-c", "app"]}]},
    # skipped: already runs an init
    {"containers": [{"name": "app", "image": "example/app:1", "command": ["tini", "--", "app"]}]},
    # failed: no command, and no registry answers (twice: the second is a remembered failure)
    {"containers": [{"name": "app", "image": "127.0.0.1:1/missing/image:1"}]},
    {"containers": [{"name": "app", "image": "127.0.0.1:1/missing/image:1"}]},
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("metric-names")
    with run_webhook(make_certs(tmp), tmp, env={"PODINIT_TIMEOUT_SECONDS": "2"}) as webhook:
        yield webhook


@pytest.fixture(scope="module")
def exposition(served: Webhook) -> str:
    """/metrics after the admissions of PODS, each answered 200."""
    with served.client() as client:
        for number, spec in enumerate(PODS):
            pod = {"metadata": {"name": f"pod-{number}", "namespace": "default"}, "spec": spec}
            assert client.post("/mutate", json=review(pod)).status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def exported_names(exposition: str) -> dict[str, str]:
    """Every name a query can select, from the TYPE lines: name -> its family's TYPE name."""
    names: dict[str, str] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            for suffix in SUFFIXES[kind]:
                names[family + suffix] = family
    return names


def queries(render: Render) -> dict[str, str]:
    """Every PromQL query of the rendered PrometheusRule and dashboard, by where it is."""
    objs = render(ENABLED)
    found: dict[str, str] = {}
    for group in one(objs, "PrometheusRule")["spec"]["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    dashboard = json.loads(one(objs, "ConfigMap", "podinit-dashboard")["data"]["podinit.json"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable ${variable['name']}"] = variable["query"]["query"]
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    return found


def test_the_query_parser_finds_metric_names_and_nothing_else() -> None:
    assert metric_names('absent(up{job="a",namespace="b"} == 1)') == {"up"}
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))'
        " > 3.5"
    ) == {"x_bucket"}
    assert metric_names('sum(rate(a_total{r!="ok"}[10m])) / ignoring(r) group_left b') == {
        "a_total",
        "b",
    }
    assert metric_names("min(c_seconds) - time() < 14 * 86400 offset 5m") == {"c_seconds"}
    assert metric_names('label_values(d_total{namespace="$namespace",x="y"}, job)') == {"d_total"}
    assert metric_names("sum(e) by (le, job) and on(job) f unless g") == {"e", "f", "g"}


def test_every_metric_the_alerts_and_dashboard_query_is_one_podinit_serve_exports(
    render: Render, exposition: str
) -> None:
    exported = exported_names(exposition)
    unknown = {
        f"{where}: {name}"
        for where, expr in queries(render).items()
        for name in metric_names(expr)
        if name not in exported and name not in EXTERNAL
    }
    assert not unknown, "queries of metrics /metrics does not export:\n" + "\n".join(
        sorted(unknown)
    )


def test_every_family_podinit_serve_exports_is_on_the_dashboard(
    render: Render, exposition: str
) -> None:
    exported = exported_names(exposition)
    on_dashboard = {
        exported[name]
        for where, expr in queries(render).items()
        if where.startswith("panel ")
        for name in metric_names(expr)
        if name in exported
    }
    assert set(exported.values()) - on_dashboard == set(), "add a panel to dashboards/podinit.json"


def test_the_external_metrics_are_read_by_some_query(render: Render) -> None:
    used = {name for expr in queries(render).values() for name in metric_names(expr)}
    assert used >= EXTERNAL, "EXTERNAL lists a metric no query reads any more"
