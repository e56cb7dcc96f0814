"""An SPDX 2.3 SBOM of a built image, read from its root filesystem.

What an image holds, by the records its installers left: Debian packages from
``var/lib/dpkg/status``, Python distributions from ``*.dist-info/METADATA``, and for an
image without either (FROM scratch) every regular file with its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, NamedTuple


class Component(NamedTuple):
    name: str
    version: str
    purl: str
    source: str  # where in the image it was found


def debian_packages(rootfs: Path, *, arch: str) -> Iterator[Component]:
    status = rootfs / "var/lib/dpkg/status"
    if not status.is_file():
        return
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
        if "Package" not in fields or "installed" not in fields.get("Status", ""):
            continue
        name, version = fields["Package"], fields.get("Version", "")
        package_arch = fields.get("Architecture", arch)
        purl = f"pkg:deb/debian/{name}@{version}?arch={package_arch}"
        yield Component(name, version, purl, "/var/lib/dpkg/status")


def python_distributions(rootfs: Path) -> Iterator[Component]:
    for metadata in sorted(rootfs.glob("**/site-packages/*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(errors="replace"))
        name, version = headers.get("Name", ""), headers.get("Version", "")
        if name:
            normalized = re.sub(r"[-_.]+", "-", name).lower()
            source = "/" + str(metadata.parent.relative_to(rootfs))
            yield Component(name, version, f"pkg:pypi/{normalized}@{version}", source)


def _files(rootfs: Path) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    for path in sorted(p for p in rootfs.rglob("*") if p.is_file() and not p.is_symlink()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        files.append(
            {
                "SPDXID": f"SPDXRef-File-{len(files)}",
                "fileName": "/" + str(path.relative_to(rootfs)),
                "checksums": [{"algorithm": "SHA256", "checksumValue": digest}],
            }
        )
    return files


def spdx(
    rootfs: Path, *, image: str, digest: str, arch: str, created: str, tool: str
) -> dict[str, Any]:
    """The SBOM document; ``created`` is an ISO timestamp (kept out so tests can pin it)."""
    components = [*debian_packages(rootfs, arch=arch), *python_distributions(rootfs)]
    packages = [_image_package(image, digest)]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")]
    for index, component in enumerate(components):
        packages.append(_component_package(f"SPDXRef-Package-{index}", component))
        relationships.append(_contains(packages[-1]["SPDXID"]))
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image,
        "documentNamespace": f"https://podinit.dev/spdx/{digest}/{uuid.uuid4()}",
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if not components:  # nothing installed by a package manager: list the files themselves
        document["files"] = _files(rootfs)
        relationships.extend(_contains(f["SPDXID"]) for f in document["files"])
    return document


def _image_package(image: str, digest: str) -> dict[str, Any]:
    return {
        "SPDXID": "SPDXRef-Image",
        "name": image,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "filesAnalyzed": False,
    }


def _component_package(spdx_id: str, component: Component) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id,
        "name": component.name,
        "versionInfo": component.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "sourceInfo": f"found in {component.source}",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": component.purl,
            }
        ],
    }


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _contains(spdx_id: str) -> dict[str, str]:
    return _relationship("SPDXRef-Image", "CONTAINS", spdx_id)


def write(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path
