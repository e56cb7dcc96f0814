"""`podinit inject` without --offline looks images up in a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e.registry import Pusher, Registry
from tests.registry.registry_harness import start_or_skip
from webhook.cli.main import main


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    registry = start_or_skip(tmp_path_factory.mktemp("registry"))
    Pusher(registry).image("team/app", "3", entrypoint=["/entry"], cmd=["serve", "$HOME"])
    yield registry
    registry.stop()


def test_images_missing_from_image_config_are_looked_up_in_the_registry(
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODINIT_INSECURE_REGISTRIES", json.dumps([registry.host]))
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "app", "image": f"{registry.host}/team/app:3"}]},
            }
        )
    )
    assert main(["inject", "-f", str(manifest)]) == 0
    app = yaml.safe_load(capsys.readouterr().out)["spec"]["containers"][0]
    assert app["command"] == ["/podinit/podinit", "--", "/entry"]
    assert app["args"] == ["serve", "$$HOME"]


def test_offline_never_contacts_the_registry(
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODINIT_INSECURE_REGISTRIES", json.dumps([registry.host]))
    manifest = tmp_path / "pod.yaml"
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": f"{registry.host}/team/app:3"}]},
    }
    manifest.write_text(yaml.safe_dump(pod))
    assert main(["inject", "-f", str(manifest), "--offline", "--explain"]) == 0
    captured = capsys.readouterr()
    assert "command" not in yaml.safe_load(captured.out)["spec"]["containers"][0]
    assert (
        "failed: needs the image's ENTRYPOINT/CMD: pass --image-config or give the container a"
        " command (offline)" in captured.err
    )
