"""`podinit inject --image-config`: keys matched as `imageOverrides` keys are (fnmatch, first
match in file order), and --offline: messages that say what is missing, no registry client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_inject_cli import run
from webhook.cli.image_sources import OfflineLookup, RegistryLookup
from webhook.config import load
from webhook.core import ImageConfig, ImageOverride

ROOT = Path(__file__).resolve().parents[2]
PODS = """apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - {name: app, image: registry.local/shop/app:2.4.1}
    - {name: api, image: registry.local/shop/api:1}
    - {name: other, image: docker.io/library/nginx:1.27}
"""


def inject_offline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, image_config: str | None
) -> tuple[dict[str, list[str] | None], str]:
    (tmp_path / "pod.yaml").write_text(PODS)
    argv = ["inject", "-f", str(tmp_path / "pod.yaml"), "--offline", "--explain"]
    if image_config is not None:
        (tmp_path / "images.yaml").write_text(image_config)
        argv += ["--image-config", str(tmp_path / "images.yaml")]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    containers = yaml.safe_load(out)["spec"]["containers"]
    return {c["name"]: c.get("command") for c in containers}, err


def test_a_glob_key_matches_as_an_image_overrides_key_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    commands, err = inject_offline(
        capsys,
        tmp_path,
        "registry.local/shop/app:2.4.1: {entrypoint: [/exact]}\n"
        "registry.local/shop/*: {entrypoint: [/shop]}\n"
        "registry.local/shop/app:*: {entrypoint: [/never]}\n",  # the first match wins
    )
    assert commands == {
        "app": ["/podinit/podinit", "--", "/exact"],
        "api": ["/podinit/podinit", "--", "/shop"],
        "other": None,
    }
    assert "web container other: failed: not in --image-config (offline)" in err


OVERRIDES = (
    ImageOverride(pattern="registry.invalid/b/*", config=ImageConfig(("/b",))),
    ImageOverride(pattern="registry.invalid/b/app:[0-9]", config=ImageConfig(("/digit",))),
)


def test_offline_the_first_matching_key_wins() -> None:
    lookup = OfflineLookup(OVERRIDES, image_config=True)
    assert lookup({"registry.invalid/b/app:1", "registry.invalid/c/app:1"}, "amd64") == {
        "registry.invalid/b/app:1": ImageConfig(("/b",)),
        "registry.invalid/c/app:1": lookup.missing,
    }


def test_online_an_image_a_glob_key_matches_is_not_looked_up() -> None:
    with RegistryLookup(load(None), OVERRIDES) as lookup:  # registry.invalid never resolves
        assert lookup({"registry.invalid/b/app:1"}, "amd64") == {
            "registry.invalid/b/app:1": ImageConfig(("/b",))
        }


def test_offline_without_image_config_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    commands, err = inject_offline(capsys, tmp_path, None)
    assert commands == {"app": None, "api": None, "other": None}
    assert "--image-config (offline)" not in err
    assert (
        "web container app: failed: needs the image's ENTRYPOINT/CMD: pass --image-config or"
        " give the container a command (offline)"
    ) in err


def test_offline_never_imports_the_registry_client(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(PODS)
    code = (
        "import sys\n"
        "from webhook.cli.main import main\n"
        f"assert main(['inject', '-f', {str(tmp_path / 'pod.yaml')!r}, '--offline']) == 0\n"
        "assert 'httpx' not in sys.modules and 'webhook.registry' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_injecting_a_bumped_image_again_reads_the_new_images_argv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """GitOps: a template `inject` wrote, its image bumped, injected again (the webhook does
    the same: tests/core/test_provenance.py)."""
    (tmp_path / "images.yaml").write_text(
        "registry.local/shop/app:1: {entrypoint: [/v1], cmd: [--one]}\n"
        "registry.local/shop/app:2: {entrypoint: [/v2]}\n"
    )
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
    (tmp_path / "pod.yaml").write_text(pod + "  - {name: app, image: registry.local/shop/app:1}\n")
    config = ["--offline", "--image-config", str(tmp_path / "images.yaml")]
    code, first, err = run(capsys, "inject", "-f", str(tmp_path / "pod.yaml"), *config)
    assert code == 0, err
    bumped = yaml.safe_load(first)
    bumped["spec"]["containers"][0]["image"] = "registry.local/shop/app:2"
    (tmp_path / "bumped.yaml").write_text(yaml.safe_dump(bumped))
    code, again, err = run(capsys, "inject", "-f", str(tmp_path / "bumped.yaml"), *config)
    assert code == 0, err
    [app] = yaml.safe_load(again)["spec"]["containers"]
    assert app["command"] == ["/podinit/podinit", "--", "/v2"]
    assert "args" not in app
    assert [m["mountPath"] for m in app["volumeMounts"]] == ["/podinit"]
