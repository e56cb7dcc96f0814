"""Golden files: each manifest in testdata/ injected must equal its `.injected` twin.

Run `pytest tests/golden --update-golden` after a deliberate change and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.cli.main import main

TESTDATA = Path(__file__).parent / "testdata"
IMAGES = TESTDATA / "images.yaml"
NOT_MANIFESTS = {"images.yaml", "config.yaml"}
INPUTS = sorted(p for p in TESTDATA.rglob("*.yaml") if p.name not in NOT_MANIFESTS)


def golden_of(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".injected")


def cli_output(manifest: Path, capsys: pytest.CaptureFixture[str]) -> str:
    argv = ["inject", "-f", str(manifest), "--image-config", str(IMAGES), "--offline"]
    config = manifest.parent / "config.yaml"
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
        config = manifest.parent / "config.yaml"
        if config.exists():
            (tmp_path / "config.yaml").write_text(config.read_text())
        assert cli_output(again, capsys) == golden_of(manifest).read_text(), manifest.name
        (tmp_path / "config.yaml").unlink(missing_ok=True)
