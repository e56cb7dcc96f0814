"""charts/podinit: lint, Kubernetes schemas, and what each mode renders."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from scripts.chart import generate
from tests.chart.conftest import MODES, Objects, Render, kinds, one, pod_spec, render_error
from webhook.config import Config, camel, read_file

ROOT = generate.ROOT
CHART = generate.CHART
# Kinds defined by CRDs (cert-manager, prometheus-operator): no schema in kubernetes-validate.
CRD_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}
ALWAYS_EXCLUDED = ["kube-system", "kube-public", "kube-node-lease"]


def kube_versions() -> list[str]:
    newest = int(latest_version().split(".")[1])
    return [f"1.{minor}.0" for minor in range(30, newest + 1)]


def webhook(objs: Objects) -> dict[str, Any]:
    [hook] = one(objs, "MutatingWebhookConfiguration")["webhooks"]
    return hook


def server_config(objs: Objects, tmp_path: Path) -> Config:
    """The ConfigMap's config file, read by the server's own loader."""
    path = tmp_path / "config.yaml"
    path.write_text(one(objs, "ConfigMap", "podinit")["data"]["config.yaml"])
    read_file(path)  # unknown keys are rejected here
    from webhook.config import load

    return load(path)


def selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's matchExpressions, evaluated as the API server does."""
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def namespace_labels(name: str, inject: str | None = None) -> dict[str, str]:
    labels = {"kubernetes.io/metadata.name": name}
    if inject is not None:
        labels["podinit.dev/inject"] = inject
    return labels


# --------------------------------------------------------------------------- lint, schemas


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_strict_passes_in_every_mode(helm: str, mode: str) -> None:
    argv = [helm, "lint", "--strict", str(CHART), "--kube-version", "1.37.0"]
    for item in MODES[mode]:
        argv += ["--set", item]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("version", kube_versions())
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_renders_objects_valid_for_kubernetes_1_30_to_the_newest(
    render: Render, mode: str, version: str
) -> None:
    objs = render(MODES[mode], kube_version=version)
    assert objs
    for obj in objs:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{name} is not valid for {version}: {error.message} at {error.path}")


def test_the_chart_refuses_kubernetes_older_than_1_30(helm: str) -> None:
    argv = [helm, "template", "x", str(CHART), "--kube-version", "1.29.0"]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode != 0 and "kubeVersion" in result.stderr


def test_the_values_schema_lists_every_server_setting_the_chart_does_not_set_itself() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    listed = set(schema["properties"]["config"]["properties"])
    settings = {camel(name) for name in Config.model_fields}
    assert listed == settings - generate.CHART_OWNED
    assert settings >= generate.CHART_OWNED, "the chart sets a setting the server does not have"
    assert generate.schema_file()[generate.SCHEMA] == generate.SCHEMA.read_text(), (
        "values.schema.json is stale: run `make deploy-manifests`"
    )


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("config.noSuchSetting=1", "an unknown setting"),
        ("config.namespace=elsewhere", "a setting the chart owns"),
        ("config.onLookupFailure=maybe", "a value outside the setting's choices"),
        ("mode=everywhere", "an unknown mode"),
        ("certificates.mode=existingSecret", "an existing secret without a name"),
        ("webhook.failurePolicy=Sometimes", "an unknown failure policy"),
    ],
)
def test_the_schema_or_templates_reject_bad_values(helm: str, setting: str, why: str) -> None:
    assert render_error(helm, setting), why


def test_the_default_config_values_are_the_server_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = Config()
    for name, value in values["config"].items():
        field = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        assert getattr(defaults, field) == value, f"config.{name}"


def test_chart_app_and_init_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    init_mk = (ROOT / "init" / "init.mk").read_text()
    version = chart["appVersion"]
    assert re.search(rf'^version = "{re.escape(version)}"$', pyproject, re.M)
    assert re.search(rf"^INIT_VERSION\s*:=\s*{re.escape(version)}$", init_mk, re.M)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["config"]["initImage"].endswith(f":{version}")


# --------------------------------------------------------------------------- the server


@pytest.mark.parametrize("mode", [m for m in MODES if m != "url-only"])
def test_the_rendered_config_file_loads_in_the_server_and_matches_the_objects(
    render: Render, mode: str, tmp_path: Path
) -> None:
    objs = render(MODES[mode])
    config = server_config(objs, tmp_path)
    spec = pod_spec(objs)
    [container] = spec["containers"]
    assert config.service_name == one(objs, "Service")["metadata"]["name"]
    assert config.namespace == "podinit"
    assert (
        config.webhook_configuration
        == one(objs, "MutatingWebhookConfiguration")["metadata"]["name"]
    )
    assert container["ports"][0]["containerPort"] == config.port
    assert webhook(objs)["timeoutSeconds"] == config.timeout_seconds
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PODINIT_CONFIG_FILE"] == "/etc/podinit/config.yaml"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts["config"]["mountPath"] == env["PODINIT_CONFIG_FILE"]
    tls_dir = mounts["tls"]["mountPath"]
    assert str(config.tls_cert_file) == f"{tls_dir}/tls.crt"
    assert str(config.tls_key_file) == f"{tls_dir}/tls.key"
    if "certificates.mode=certManager" in MODES[mode] or "existingSecret" in mode:
        assert config.certificates == "files"
        assert volumes["tls"]["secret"]["secretName"] == config.certificate_secret
        assert mounts["tls"]["readOnly"] is True
    else:
        assert config.certificates == "selfManaged"
        assert "emptyDir" in volumes["tls"], "the server writes its own certificate there"
    if "certificates.mode=certManager" in MODES[mode]:
        assert one(objs, "Certificate")["spec"]["secretName"] == config.certificate_secret


def test_the_server_runs_with_a_restricted_read_only_pod(render: Render) -> None:
    objs = render()
    deployment = one(objs, "Deployment")
    spec = pod_spec(objs)
    [container] = spec["containers"]
    assert deployment["spec"]["replicas"] == 2
    pod_sc, sc = spec["securityContext"], container["securityContext"]
    # Pod Security Standards, restricted profile
    # no uid of its own: the image's numeric USER, or the one OpenShift assigns from a range
    assert pod_sc["runAsNonRoot"] is True and "runAsUser" not in pod_sc
    assert "runAsUser" not in sc
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert not any("hostPath" in v for v in spec["volumes"])
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # read-only root filesystem, with /tmp writable
    assert sc["readOnlyRootFilesystem"] is True
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])
    # probes, resources, spreading, disruption budget
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    for constraint in spec["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"] == selector
    assert one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_a_config_change_rolls_the_deployment(render: Render) -> None:
    def checksum(objs: Objects) -> str:
        annotations = one(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    assert checksum(render()) != checksum(render(["config.logLevel=debug"]))


# --------------------------------------------------------------------------- the webhook


def test_the_webhook_configuration_is_safe_by_default(render: Render) -> None:
    objs = render()
    hook = webhook(objs)
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 5
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["sideEffects"] == "NoneOnDryRun"  # Events are written, never on a dry run
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    service = one(objs, "Service")
    assert hook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": "podinit",
        "path": "/mutate",
        "port": service["spec"]["ports"][0]["port"],
    }
    assert "caBundle" not in hook["clientConfig"], "an upgrade would reset the server's caBundle"


def test_opt_in_mode_sends_only_pods_of_namespaces_labelled_enabled(render: Render) -> None:
    selector = webhook(render())["namespaceSelector"]
    assert selected(selector, namespace_labels("shop", "enabled"))
    assert not selected(selector, namespace_labels("shop"))
    assert not selected(selector, namespace_labels("shop", "disabled"))
    for name in [*ALWAYS_EXCLUDED, "podinit"]:
        assert not selected(selector, namespace_labels(name, "enabled")), name


def test_cluster_wide_mode_excludes_system_namespaces_its_own_and_those_labelled_disabled(
    render: Render,
) -> None:
    selector = webhook(render(["mode=clusterWide"]))["namespaceSelector"]
    assert selected(selector, namespace_labels("shop"))
    assert selected(selector, namespace_labels("shop", "enabled"))
    assert not selected(selector, namespace_labels("shop", "disabled"))
    for name in [*ALWAYS_EXCLUDED, "podinit"]:
        assert not selected(selector, namespace_labels(name)), name


def test_the_release_namespace_is_excluded_wherever_the_chart_is_installed(
    render: Render,
) -> None:
    selector = webhook(render(["mode=clusterWide"], namespace="platform"))["namespaceSelector"]
    assert not selected(selector, namespace_labels("platform"))
    assert selected(selector, namespace_labels("podinit"))


def test_a_pod_label_opts_a_pod_out_and_the_server_pods_carry_it(render: Render) -> None:
    objs = render(["mode=clusterWide"])
    selector = webhook(objs)["objectSelector"]
    assert selected(selector, {"app": "shop"})
    assert not selected(selector, {"app": "shop", "podinit.dev/inject": "disabled"})
    server_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not selected(selector, server_labels)
    test_pod = one(objs, "Pod")
    assert not selected(selector, test_pod["metadata"]["labels"])


def test_match_conditions_skip_annotated_and_windows_pods(render: Render) -> None:
    conditions = {c["name"]: c["expression"] for c in webhook(render())["matchConditions"]}
    assert set(conditions) == {"not-opted-out-by-annotation", "not-windows"}
    annotation = conditions["not-opted-out-by-annotation"]
    assert "!has(object.metadata.annotations)" in annotation
    assert "'podinit.dev/inject' in object.metadata.annotations" in annotation
    from webhook.core import annotations

    assert annotations.INJECT == "podinit.dev/inject"
    for word in ("false", "0", "no"):  # the server's own opt-out values
        assert annotations.is_false(word) and f"'{word}'" in annotation
    assert "object.spec.os.name != 'windows'" in conditions["not-windows"]


def test_webhook_url_replaces_the_service_and_carries_its_ca_bundle(render: Render) -> None:
    objs = render(MODES["url-only"])
    assert kinds(objs) == {"MutatingWebhookConfiguration"}
    assert webhook(objs)["clientConfig"] == {
        "url": "https://127.0.0.1:8443/mutate",
        "caBundle": "Q0EK",
    }


def test_webhook_url_without_a_ca_bundle_leaves_it_to_the_server_or_cainjector(
    render: Render,
) -> None:
    url = "webhook.url=https://podinit.example:8443/mutate"
    assert "caBundle" not in webhook(render([url]))["clientConfig"]
    objs = render([url, "certificates.mode=certManager"])
    annotations = one(objs, "MutatingWebhookConfiguration")["metadata"]["annotations"]
    assert "cert-manager.io/inject-ca-from" in annotations


def test_an_existing_secret_is_mounted_and_its_ca_bundle_written(render: Render) -> None:
    objs = render(MODES["clusterWide-existingSecret"])
    assert webhook(objs)["clientConfig"]["caBundle"] == "Q0EK"
    assert kinds(objs).isdisjoint({"Certificate", "Issuer"})
    roles = [o for o in objs if o["kind"] == "Role"]
    assert not any("secrets" in rule["resources"] for o in roles for rule in o["rules"])


def test_cert_manager_mode_issues_the_serving_certificate_and_injects_its_ca(
    render: Render,
) -> None:
    objs = render(MODES["optIn-certManager"])
    certificate = one(objs, "Certificate")
    service = one(objs, "Service")["metadata"]["name"]
    assert f"{service}.podinit.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == one(objs, "Issuer")["metadata"]["name"]
    configuration = one(objs, "MutatingWebhookConfiguration")
    assert configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"podinit/{certificate['metadata']['name']}"
    )
    assert "caBundle" not in webhook(objs)["clientConfig"]

    own_issuer = render([*MODES["optIn-certManager"], "certificates.certManager.issuerRef.name=ca"])
    assert "Issuer" not in kinds(own_issuer)
    assert one(own_issuer, "Certificate")["spec"]["issuerRef"] == {"name": "ca"}
