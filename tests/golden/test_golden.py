"""Golden files: each manifest in testdata/ injected must equal its `.injected` twin.

A folder may hold its own `config.yaml` (settings) and `images.yaml` (image configs, instead of
testdata/images.yaml): testdata/corpus/ holds real manifests with their images' Dockerfile configs.
Run `pytest tests/golden --update-golden` after a deliberate change and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from webhook.cli.main import main
from webhook.manifests import pod_templates

TESTDATA = Path(__file__).parent / "testdata"
IMAGES = TESTDATA / "images.yaml"
NOT_MANIFESTS = {"images.yaml", "config.yaml"}
INPUTS = sorted(p for p in TESTDATA.rglob("*.yaml") if p.name not in NOT_MANIFESTS)


def golden_of(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".injected")


def images_of(folder: Path) -> Path:
    """The folder's own image configs, else the shared ones."""
    own = folder / "images.yaml"
    return own if own.exists() else IMAGES


def cli_output(
    manifest: Path, capsys: pytest.CaptureFixture[str], folder: Path | None = None
) -> str:
    """`inject` of `manifest` with the settings and image configs of `folder` (its own)."""
    folder = folder or manifest.parent
    argv = ["inject", "-f", str(manifest), "--image-config", str(images_of(folder)), "--offline"]
    config = folder / "config.yaml"
    if config.exists():
        argv += ["--config", str(config)]
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("manifest", INPUTS, ids=lambda p: str(p.relative_to(TESTDATA)))
def test_the_cli_output_matches_the_golden_file(
    manifest: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    output = cli_output(manifest, capsys)
    golden = golden_of(manifest)
    if request.config.getoption("--update-golden"):
        golden.write_text(output)
    assert golden.exists(), f"{golden.name} is missing: run pytest tests/golden --update-golden"
    assert output == golden.read_text()


def test_every_golden_file_has_its_input_manifest() -> None:
    stale = [p for p in TESTDATA.rglob("*.injected") if not p.with_suffix("").exists()]
    assert stale == [], f"golden files without input (delete them): {stale}"


def test_the_golden_files_are_already_injected_so_injecting_again_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for manifest in INPUTS:
        again = tmp_path / manifest.name
        again.write_text(golden_of(manifest).read_text())
        output = cli_output(again, capsys, manifest.parent)
        assert output == golden_of(manifest).read_text(), manifest.relative_to(TESTDATA)


def test_every_image_config_entry_is_the_image_of_a_container_that_uses_it() -> None:
    """An entry no manifest uses is stale, and so is the Dockerfile it was read from."""
    used: dict[Path, set[str]] = {}
    for manifest in INPUTS:
        images = used.setdefault(images_of(manifest.parent), set())
        for doc in yaml.safe_load_all(manifest.read_text()):
            for _, template in pod_templates(doc):
                spec = template.get("spec") or {}
                for container in (spec.get("initContainers") or []) + spec["containers"]:
                    images.add(container["image"])
    for config, images in used.items():
        unused = set(yaml.safe_load(config.read_text())) - images
        assert unused == set(), f"{config.relative_to(TESTDATA)}: no container uses {unused}"
