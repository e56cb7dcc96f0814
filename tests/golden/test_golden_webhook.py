"""The golden manifests' pods sent through a running webhook come out as the CLI made them."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from tests.golden.test_golden import INPUTS, TESTDATA, golden_of, images_of
from tests.server.harness import Certs, Webhook, decoded_patch, make_certs, review, run_webhook
from webhook.manifests import pod_templates
from webhook.registry.errors import InvalidReference
from webhook.registry.reference import parse_reference

UNREACHABLE = "127.0.0.1:9"  # the discard port: lookups of unknown images fail at once, locally


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def webhooks(
    certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[Path, Webhook]]:
    """One webhook per settings folder, configured as `inject --config`, images as overrides."""
    running: dict[Path, Webhook] = {}
    stack: list[Any] = []
    for folder in sorted({p.parent for p in INPUTS}):
        tmp = tmp_path_factory.mktemp("golden-webhook")
        config = (
            yaml.safe_load((folder / "config.yaml").read_text())
            if (folder / "config.yaml").exists()
            else {}
        )
        config["imageOverrides"] = yaml.safe_load(images_of(folder).read_text())
        (tmp / "config.yaml").write_text(yaml.safe_dump(config))
        env = {
            "PODINIT_CONFIG_FILE": str(tmp / "config.yaml"),
            "PODINIT_REGISTRY_MIRRORS": json.dumps(dict.fromkeys(registries(), UNREACHABLE)),
            "PODINIT_INSECURE_REGISTRIES": json.dumps([UNREACHABLE]),
        }
        context = run_webhook(certs, tmp, env=env)
        running[folder] = context.__enter__()
        stack.append(context)
    yield running
    for context in stack:
        context.__exit__(None, None, None)


def registries() -> set[str]:
    """Every registry the inputs name: none may be reached, whatever the network here allows."""
    hosts = {"registry.local:5000", "docker.io"}
    for manifest in INPUTS:
        for doc in yaml.safe_load_all(manifest.read_text()):
            for _, template in pod_templates(doc):
                spec = template.get("spec") or {}
                for container in (spec.get("containers") or []) + (
                    spec.get("initContainers") or []
                ):
                    with contextlib.suppress(InvalidReference):
                        hosts.add(parse_reference(container.get("image", "")).registry)
    return hosts


def comparable(pod: dict[str, Any]) -> dict[str, Any]:
    """Failure reasons differ by path (offline vs registry); outcomes and the rest may not."""
    pod = copy.deepcopy(pod)
    annotations = pod.get("metadata", {}).get("annotations", {})
    if "podinit.dev/status" in annotations:
        status = json.loads(annotations["podinit.dev/status"])
        for name, text in status.get("containers", {}).items():
            status["containers"][name] = "failed" if text.startswith("failed") else text
        annotations["podinit.dev/status"] = status
    return pod


@pytest.mark.parametrize("manifest", INPUTS, ids=lambda p: str(p.relative_to(TESTDATA)))
def test_the_webhook_mutates_each_pod_exactly_as_the_cli_did(
    manifest: Path, webhooks: dict[Path, Webhook]
) -> None:
    webhook = webhooks[manifest.parent]
    inputs = [t for doc in yaml.safe_load_all(manifest.read_text()) for _, t in pod_templates(doc)]
    expected = [
        t
        for doc in yaml.safe_load_all(golden_of(manifest).read_text())
        for _, t in pod_templates(doc)
    ]
    assert len(inputs) == len(expected) > 0
    with webhook.client() as client:
        for template, golden in zip(inputs, expected, strict=True):
            answer = client.post("/mutate", json=review(template)).json()
            patch = decoded_patch(answer) if "patch" in answer["response"] else []
            result = jsonpatch.apply_patch(copy.deepcopy(template), patch)
            assert comparable(result) == comparable(golden)
