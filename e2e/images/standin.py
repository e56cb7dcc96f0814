"""A stand-in for ``python:3.11-slim-bookworm`` built from Debian packages.

No public image can be pulled here, so the Dockerfile's ``PYTHON_IMAGE`` is pointed at this:
bookworm's python3.11 with its venv module (what the Dockerfile uses of the base) made with
mmdebstrap from the mirror the machine's apt sources already name. The tarball is cached by
its recipe, so it is made once per machine.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from e2e.images.buildah import Buildah, BuildError, images_cache

TAG = "localhost/podinit-standin/python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# As slim images do: no documentation, manual pages or translations.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
_DEFAULT_MIRROR = "http://deb.debian.org/debian"


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt sources name (deb822 or one-line form)."""
    for path in [*sorted(sources.glob("sources.list.d/*.sources")), sources / "sources.list"]:
        if not path.is_file():
            continue
        text = path.read_text()
        for uris in re.findall(r"^URIs:\s*(\S+)", text, re.M):
            if uris.rstrip("/").endswith("/debian"):
                return str(uris)
        for url in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.M):
            return str(url)
    return _DEFAULT_MIRROR


def _recipe(mirror: str) -> list[str]:
    argv = ["mmdebstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES]
    return [*argv, "--components=main", SUITE]


def ensure(buildah: Buildah, *, mirror: str | None = None) -> str:
    """The stand-in's tag, building it (and its tarball) when missing."""
    if buildah.exists(TAG):
        return TAG
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed (Debian package mmdebstrap)")
    mirror = mirror or apt_mirror()
    recipe = _recipe(mirror)
    key = hashlib.sha256(" ".join(recipe).encode()).hexdigest()[:16]
    tarball = images_cache() / f"standin-{key}.tar"
    if not tarball.is_file():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        result = subprocess.run(
            [*recipe, str(partial), mirror], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BuildError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
        partial.rename(tarball)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    config = ["--env", f"PATH={path}", "--env", "LANG=C.UTF-8", "--cmd", "python3"]
    buildah.commit_rootfs(tarball, tag=TAG, config=config)
    return TAG
