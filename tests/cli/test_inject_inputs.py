"""`podinit inject -f`: inputs as they come from other tools, and mistakes made with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_inject_cli import POD, run

ROOT = Path(__file__).resolve().parents[2]
WRAPPED = ["/podinit/podinit", "--", "app"]


def test_tab_indented_json_is_read_as_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "pod.json"
    source.write_text(json.dumps(yaml.safe_load(POD), indent="\t"))  # jq --tab, Go MarshalIndent
    code, out, err = run(capsys, "inject", "-f", str(source), "-o", "json")
    assert code == 0, err
    assert json.loads(out)["spec"]["containers"][0]["command"] == WRAPPED


def test_repeated_filenames_are_all_read_in_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text(POD)
    (tmp_path / "b.yaml").write_text(POD.replace("web", "second"))
    code, out, _ = run(
        capsys, "inject", "-f", str(tmp_path / "a.yaml"), "-f", str(tmp_path / "b.yaml")
    )
    assert code == 0
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["web", "second"]


def test_an_empty_filename_is_refused_instead_of_reading_the_current_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "inject", "-f", "")
    assert (code, out) == (1, "")
    assert err == "podinit: -f: an empty file name\n"


@pytest.mark.parametrize("flag", ["-f", "--image-config"])
def test_input_that_is_not_utf8_is_named_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str
) -> None:
    source = tmp_path / "latin1.yaml"
    source.write_bytes("metadata: {name: caf\u00e9}\n".encode("latin-1"))
    argv = ["-f", str(source)] if flag == "-f" else ["-f", "-", "--image-config", str(source)]
    code, _, err = run(capsys, "inject", *argv, "--offline")
    assert code == 1
    assert err == f"podinit: {source}: not UTF-8 (byte 20)\n"


def test_a_misspelt_key_in_the_image_configs_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configs = tmp_path / "images.yaml"
    configs.write_text("example/app:1: {Entrypoint: [/app]}\n")
    code, _, err = run(capsys, "inject", "-f", "-", "--image-config", str(configs), "--offline")
    assert code == 1
    assert "example/app:1: unknown keys ['Entrypoint']" in err


def test_a_pod_the_webhook_would_deny_is_an_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "podinit.yaml"
    config.write_text("onLookupFailure: deny\n")
    source = tmp_path / "pod.yaml"
    source.write_text(POD.replace("command: [app]", "args: [--serve]"))
    code, out, err = run(capsys, "inject", "-f", str(source), "--offline", "--config", str(config))
    assert (code, out) == (1, "")
    assert f"{source}: document 1 (pod/web): the webhook would deny it" in err


def test_a_reader_that_stops_early_ends_the_output_quietly(tmp_path: Path) -> None:
    source = tmp_path / "many.yaml"
    source.write_text("---\n".join(POD.replace("web", f"web-{n}") for n in range(2000)))
    inject = subprocess.Popen(
        [sys.executable, "-m", "webhook.cli.main", "inject", "-f", str(source), "--offline"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert inject.stdout is not None and inject.stderr is not None
    inject.stdout.readline()
    inject.stdout.close()  # as `| head -1` does
    assert inject.wait(timeout=60) == 0
    assert inject.stderr.read() == b""
