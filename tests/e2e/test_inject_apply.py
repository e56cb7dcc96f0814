"""`podinit inject -f` output as kubectl decodes it: the real apiserver (server-side dry run)
reads the same values from the injected manifests as from the originals, plus the wrapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from e2e.controlplane import ControlPlane
from tests.e2e.test_scan import podinit

# Values whose meaning differs between PyYAML and the YAML rules kubectl applies.
MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: tricky}
data:
  ACCEPT_EULA: "Y"
  LEGACY: "n"
  RATE: "1e3"
  UMASK: "0o022"
  OPENS: 12:30
  STARTED: 2024-05-01T10:00:00Z
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: anchored
  annotations: {example.com/deployed-at: 2024-05-01T10:00:00Z}
spec:
  selector: {matchLabels: {app: anchored}}
  template:
    metadata: {labels: {app: anchored}}
    spec:
      containers:
      - &base
        name: a
        image: example/app:1
        command: [app]
        env: [{name: ACCEPT_EULA, value: "Y"}, {name: OPENS, value: 12:30}]
        volumeMounts: [{name: data, mountPath: /data}]
      - <<: *base
        name: b
      volumes: [{name: data, emptyDir: {}}]
"""


def dry_run(cp: ControlPlane, namespace: str, manifests: str) -> list[dict[str, Any]]:
    """What the apiserver would store: kubectl's decoding, admission and defaults included."""
    created = cp.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-", input=manifests
    )
    decoder, text, objects = json.JSONDecoder(), created.stdout.strip(), []
    while text:  # one JSON object per document, concatenated
        obj, end = decoder.raw_decode(text)
        objects.append(obj)
        text = text[end:].lstrip()
    return objects


def test_injected_manifests_keep_every_value_kubectl_read_from_the_originals(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    source = tmp_path / "app.yaml"
    source.write_text(MANIFESTS)
    injected = podinit("inject", "-f", str(source), "--offline")
    assert injected.returncode == 0, injected.stderr

    original_map, original_app = dry_run(control_plane, namespace, MANIFESTS)
    injected_map, injected_app = dry_run(control_plane, namespace, injected.stdout)

    assert injected_map["data"] == original_map["data"]
    assert injected_map["data"]["ACCEPT_EULA"] == "Y" and injected_map["data"]["OPENS"] == "12:30"
    annotation = "example.com/deployed-at"
    assert (
        injected_app["metadata"]["annotations"][annotation]
        == original_app["metadata"]["annotations"][annotation]
    )
    before = original_app["spec"]["template"]["spec"]["containers"]
    after = injected_app["spec"]["template"]["spec"]["containers"]
    for old, new in zip(before, after, strict=True):
        assert new["command"] == ["/podinit/podinit", "--", *old["command"]]  # once, not twice
        assert new["env"] == old["env"]
        assert [m["mountPath"] for m in new["volumeMounts"]] == ["/data", "/podinit"]
