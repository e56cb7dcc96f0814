"""`podinit inject -f`: inputs, outputs and errors as a user meets them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from webhook.cli.main import main

POD = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - {name: app, image: example/app:1, command: [app]}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_stdin_is_read_with_a_dash_and_json_output_is_one_object(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(POD.encode())))
    code, out, _ = run(capsys, "inject", "-f", "-", "-o", "json")
    assert code == 0
    assert json.loads(out)["spec"]["containers"][0]["command"] == ["/podinit/podinit", "--", "app"]


def test_a_directory_is_read_recursively_in_name_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.yaml").write_text(POD.replace("web", "second"))
    (tmp_path / "a.yml").write_text(POD)
    (tmp_path / "notes.txt").write_text("not a manifest")
    code, out, _ = run(capsys, "inject", "-f", str(tmp_path))
    assert code == 0
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web", "second"]


def test_explain_prints_one_line_per_container_to_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    code, out, err = run(capsys, "inject", "-f", str(tmp_path / "pod.yaml"), "--explain")
    assert code == 0 and yaml.safe_load(out)["kind"] == "Pod"
    assert err == "pod/web container app: injected\n"


def test_unparseable_yaml_names_the_file_and_the_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POD + "---\nkind: Pod\nspec: [unclosed\n")
    code, out, err = run(capsys, "inject", "-f", str(bad))
    assert code == 1 and out == ""
    assert err.startswith(f"podinit: {bad}: document 2, line")


def test_a_malformed_pod_names_the_file_document_object_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: Deployment\nmetadata: {name: api}\n"
        "spec:\n  template:\n    spec:\n      containers: {}\n"
    )
    code, _, err = run(capsys, "inject", "-f", str(bad))
    assert code == 1
    expected = "document 1 (deployment/api): /spec/containers: must be a list, not dict"
    assert err == f"podinit: {bad}: {expected}\n"


def test_a_missing_file_is_an_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "inject", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and "nope.yaml: cannot read" in err


def test_bad_image_config_files_are_rejected_naming_the_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "images.yaml").write_text("example/app:1: {entrypoint: /bin/app}\n")
    code, _, err = run(
        capsys,
        "inject",
        "-f",
        str(tmp_path / "pod.yaml"),
        "--image-config",
        str(tmp_path / "images.yaml"),
    )
    assert code == 1 and "example/app:1: entrypoint and cmd must be lists of strings" in err


def test_other_kinds_pass_through_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"
    (tmp_path / "cm.yaml").write_text(text)
    code, out, _ = run(capsys, "inject", "-f", str(tmp_path / "cm.yaml"))
    assert code == 0 and yaml.safe_load(out) == yaml.safe_load(text)


def test_a_list_is_walked_and_what_holds_no_pod_template_passes_through_unchanged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    items = [
        "not an object",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}},
        yaml.safe_load(POD),
    ]
    document = {"apiVersion": "v1", "kind": "List", "items": items}
    (tmp_path / "list.yaml").write_text(yaml.safe_dump(document))
    code, out, _ = run(capsys, "inject", "-f", str(tmp_path / "list.yaml"))
    assert code == 0
    first, deployment, pod = yaml.safe_load(out)["items"]
    assert (first, deployment) == (items[0], items[1])
    assert pod["spec"]["containers"][0]["command"] == ["/podinit/podinit", "--", "app"]


def test_an_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inject", "-f", "-", "--bogus"])
    assert exit_info.value.code == 2


def test_json_output_keeps_yaml_dates_as_strings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "pod.yaml").write_text(
        POD.replace("metadata: {name: web}", "metadata: {name: web, labels: {since: 2024-01-01}}")
    )
    code, out, _ = run(capsys, "inject", "-f", str(tmp_path / "pod.yaml"), "-o", "json")
    assert code == 0 and json.loads(out)["metadata"]["labels"]["since"] == "2024-01-01"


def test_an_unreadable_docker_config_file_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    monkeypatch.setenv("PODINIT_DOCKER_CONFIG_FILE", str(tmp_path / "missing.json"))
    code, _, err = run(capsys, "inject", "-f", str(tmp_path / "pod.yaml"))
    assert code == 1
    missing = tmp_path / "missing.json"
    assert err == f"podinit: dockerConfigFile: cannot read {missing}: No such file or directory\n"


def test_serve_without_its_certificate_files_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "tls.crt"
    code = main(["serve", "--tls-cert-file", str(missing), "--tls-key-file", str(missing)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"podinit: tlsCertFile: cannot read {missing}")


@pytest.mark.parametrize(
    ("version", "volume"),
    [("1.34", {"emptyDir"}), ("v1.35.2", {"image"}), ("1.36", {"image"})],
)
def test_kubernetes_version_picks_an_image_volume_from_1_35_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, version: str, volume: set[str]
) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    code, out, _ = run(
        capsys, "inject", "-f", str(tmp_path / "pod.yaml"), "--kubernetes-version", version
    )
    assert code == 0
    [podinit] = yaml.safe_load(out)["spec"]["volumes"]
    assert set(podinit) - {"name"} == volume


def test_a_kubernetes_version_that_is_not_one_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    with pytest.raises(SystemExit) as exit_:
        main(["inject", "-f", str(tmp_path / "pod.yaml"), "--kubernetes-version", "latest"])
    assert exit_.value.code == 2
    assert "not a Kubernetes version like 1.35: 'latest'" in capsys.readouterr().err
