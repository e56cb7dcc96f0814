"""deploy/: the kustomize base and overlays are the chart, rendered, and up to date."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from e2e.tools import ToolsMissing, find_kubectl
from scripts.chart import generate
from tests.unavailable import found


@pytest.fixture(scope="module")
def generated(helm: str) -> generate.Files:
    return generate.deploy_files(helm)


@pytest.fixture(scope="module")
def kubectl() -> str:
    """The built kubectl of KUBE_VERSION (`make e2e-tools`), with its kustomize."""
    return str(found(find_kubectl, ToolsMissing))


def test_deploy_is_up_to_date_with_the_chart(generated: generate.Files) -> None:
    stale = generate.stale({**generated, **generate.schema_file()})
    assert not stale, f"stale: {', '.join(stale)}; run `make deploy-manifests`"


@pytest.mark.parametrize("overlay", generate.OVERLAYS)
def test_kubectl_kustomize_builds_each_overlay_as_the_chart_renders_it(
    helm: str, kubectl: str, overlay: str
) -> None:
    result = subprocess.run(
        [kubectl, "kustomize", str(generate.DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    built: dict[Any, dict[str, Any]] = {
        generate.key(o): o for o in yaml.safe_load_all(result.stdout) if o
    }
    wanted = generate.rendered(helm, generate.OVERLAYS[overlay])
    assert sorted(built) == sorted(wanted)
    for key, obj in wanted.items():
        assert built[key] == obj, f"{key} differs"


def test_the_base_installs_into_a_namespace_that_enforces_restricted_pods() -> None:
    docs = list(yaml.safe_load_all((generate.DEPLOY / "base" / "podinit.yaml").read_text()))
    [namespace] = [d for d in docs if d["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["podinit.dev/inject"] == "disabled"
    for doc in docs:
        assert not set(doc["metadata"].get("labels", {})) & set(generate.HELM_LABELS)


def test_a_stale_deploy_directory_is_reported(generated: generate.Files) -> None:
    path = generate.DEPLOY / "overlays" / "cluster-wide" / "kustomization.yaml"
    altered = {**generated, path: generated[path] + "# edited\n"}
    assert generate.stale(altered) == [str(path.relative_to(generate.ROOT))]
