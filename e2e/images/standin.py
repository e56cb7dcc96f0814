"""A stand-in for ``python:3.11-slim-bookworm`` built from Debian packages.

No public image can be pulled here, so the Dockerfile's ``PYTHON_IMAGE`` is pointed at this:
bookworm's python3.11 with its venv module (what the Dockerfile uses of the base) made with
mmdebstrap from the mirror the machine's apt sources already name. The tarball is cached by
its recipe, so it is made once per machine.

One per platform (the webhook image is an index of amd64 and arm64). The build machine's own
is bootstrapped as Debian does it; another platform's cannot run its maintainer scripts
without emulation, so its packages are only unpacked (mmdebstrap's extract variant) and the
two things their scripts would have made that the image uses are made from outside: the dpkg
database the SBOM reads, and the CA bundle of ca-certificates. Nothing else of the scripts
matters to a Python base (no users are needed: the webhook runs as a bare uid). It holds
python3's packages and what they depend on, not Debian's essential set (no shell, no dpkg):
69 MB to the build machine's 176, which the webhook's final stage, COPY only, does not miss.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from e2e.images.build import HOST_ARCH
from e2e.images.buildah import Buildah, BuildError, images_cache

TAG = "localhost/podinit-standin/python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# As slim images do: no documentation, manual pages or translations.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
_DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Run by mmdebstrap on this machine with the unpacked root as $1, the .debs still in apt's
# cache: a dpkg status stanza per unpacked package (as dpkg would have written it), and the
# bundle update-ca-certificates would have made (every certificate ca-certificates ships).
_EXTRACTED_HOOK = r"""set -e
root="$1"
for deb in "$root"/var/cache/apt/archives/*.deb; do
  printf 'Package: %s\nStatus: install ok installed\n' "$(dpkg-deb -f "$deb" Package)"
  dpkg-deb -f "$deb" | grep -v '^Package:'
  echo
done > "$root/var/lib/dpkg/status"
mkdir -p "$root/etc/ssl/certs"
find "$root/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat \
  > "$root/etc/ssl/certs/ca-certificates.crt"
"""


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


def _recipe(mirror: str, arch: str) -> list[str]:
    if arch == HOST_ARCH:
        argv = ["mmdebstrap", "--variant=minbase"]
    else:
        argv = ["mmdebstrap", "--variant=extract", f"--architectures={arch}"]
        argv.append(f"--extract-hook={_EXTRACTED_HOOK}")
    argv.append(f"--include={','.join(PACKAGES)}")
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES]
    return [*argv, "--components=main", SUITE]


def tag(arch: str) -> str:
    return TAG if arch == HOST_ARCH else f"{TAG}-{arch}"


def bases(buildah: Buildah, platforms: Iterable[str]) -> dict[str, str]:
    """The stand-in's tag per platform, each built when missing."""
    return {arch: ensure(buildah, arch=arch) for arch in platforms}


def ensure(buildah: Buildah, *, arch: str = HOST_ARCH, mirror: str | None = None) -> str:
    """The stand-in's tag for ``arch``, building it (and its tarball) when missing."""
    if buildah.exists(tag(arch)):
        return tag(arch)
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed (Debian package mmdebstrap)")
    mirror = mirror or apt_mirror()
    recipe = _recipe(mirror, arch)
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
    config += ["--arch", arch, "--os", "linux"]
    buildah.commit_rootfs(tarball, tag=tag(arch), config=config)
    return tag(arch)
