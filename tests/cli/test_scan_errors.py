"""`podinit scan` errors that stop it before the cluster is read: one line, exit code 2 (1 is
`--fail-on-unwrapped` finding unwrapped pods)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
# A well-formed kubeconfig for an apiserver nobody listens on: scan must fail before using it.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_a_kubeconfig_that_is_not_valid_yaml_is_a_one_line_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nclusters: [\n")
    code = main(["scan", "--kubeconfig", str(kubeconfig)])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert (
        captured.err == f"podinit: cannot load a kubeconfig: {kubeconfig}, line 3: not valid YAML\n"
    )


def test_a_kubeconfig_from_the_environment_that_is_not_valid_yaml_is_named_too(
    tmp_path: Path,
) -> None:
    # A process of its own: the Kubernetes client reads $KUBECONFIG when it is imported.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nusers: {name: [u}\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PODINIT_")}
    scan = subprocess.run(
        [sys.executable, "-m", "webhook.cli.main", "scan"],
        env={**environment, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (scan.returncode, scan.stdout) == (2, "")
    assert scan.stderr == (
        f"podinit: cannot load a kubeconfig: {kubeconfig}, line 2: not valid YAML\n"
    )


def test_a_registry_ca_file_that_is_not_a_certificate_stops_scan_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not a certificate\n")
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(ca_file))
    code = main(["scan", "--kubeconfig", str(kubeconfig)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"podinit: registryCaFile: {ca_file}: no PEM or DER certificates\n"
