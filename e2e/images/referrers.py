"""Each platform image's SBOM attached to it in the registry, as an OCI referrer (artifact
type ``application/spdx+json``, ``subject`` the platform image's manifest), with oras.

oras uses the registry's referrers API where there is one and otherwise the referrers tag
scheme of the OCI distribution spec 1.1 (a ``sha256-<digest>`` tag holding an index of the
referrers), which any registry stores: Debian's docker-registry 2.8 has no referrers API.
So ``oras discover``, cosign and other OCI 1.1 clients find the SBOM from the image itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from e2e.images.build import Pushed
from e2e.images.buildah import BuildError

SPDX = "application/spdx+json"


def _oras(oras: Path, *args: str, ca_file: Path | None, cwd: Path | None = None) -> Any:
    argv = [str(oras), *args, "--format", "json"]
    if ca_file is not None:
        argv += ["--ca-file", str(ca_file)]
    # The credentials buildah pushed with (containers-auth.json), when the user has some.
    auth = os.environ.get("REGISTRY_AUTH_FILE")
    if auth:
        argv += ["--registry-config", auth]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
    if done.returncode != 0:
        raise BuildError(f"oras {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return json.loads(done.stdout)


def attach_sbom(oras: Path, *, pinned: str, arch: str, sbom: Path, ca_file: Path | None) -> str:
    """Attach ``sbom`` to the ``linux/<arch>`` image of the index ``pinned`` (repo@digest);
    returns the referrer's digest."""
    # oras refuses absolute file paths (they would leak into the layer's title): run beside it.
    found = _oras(
        oras,
        "attach",
        "--artifact-type",
        SPDX,
        "--platform",
        f"linux/{arch}",
        pinned,
        f"{sbom.name}:{SPDX}",
        ca_file=ca_file,
        cwd=sbom.parent,
    )
    digest: str = found["digest"]
    return digest


def sbom_referrers(oras: Path, *, pinned: str, arch: str, ca_file: Path | None) -> list[str]:
    """The digests of the SPDX referrers of the ``linux/<arch>`` image of ``pinned``."""
    found = _oras(
        oras,
        "discover",
        "--artifact-type",
        SPDX,
        "--platform",
        f"linux/{arch}",
        pinned,
        ca_file=ca_file,
    )
    return [referrer["digest"] for referrer in found.get("referrers") or []]


def attach_sboms(oras: Path, pushed: Pushed, *, cert_dir: Path | None) -> None:
    """Every platform image of ``pushed`` gets its SBOM attached (recorded in
    ``pushed.sbom_referrers``, one digest per platform)."""
    ca_file = cert_dir / "ca.crt" if cert_dir is not None else None
    pushed.sbom_referrers = [
        attach_sbom(oras, pinned=pushed.pinned, arch=arch, sbom=Path(sbom), ca_file=ca_file)
        for arch, sbom in zip(pushed.platforms, pushed.sboms, strict=True)
    ]
