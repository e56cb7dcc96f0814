"""``make images``: build podinit's images from the Dockerfile with buildah and push them.

    python -m e2e.images --registry registry.example.com:5000 [--base-image IMAGE]
        [--cert-dir DIR] [--standin-base] [--test-images] [--out build/images]

Each platform image's SPDX SBOM is written to ``--out`` and attached to the image in the
registry (an OCI referrer, with oras: ``bash e2e/tools.sh --oras`` builds it).
Both images are indexes of amd64 and arm64, built without emulation (see the Dockerfile).
``--standin-base`` builds the webhook on a Debian-made stand-in for python:3.11-slim, one per
platform (for machines that cannot pull it); ``--cert-dir`` holds the registry's ``ca.crt``
(buildah's ``--cert-dir`` layout).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from e2e.images import build, referrers, standin
from e2e.images.buildah import Buildah, BuildError
from e2e.tools import ToolsMissing, find_oras


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.images", description=__doc__)
    parser.add_argument("--registry", required=True, help="HOST[:PORT][/PATH] to push to")
    parser.add_argument("--base-image", help="PYTHON_IMAGE for the webhook (Dockerfile default)")
    parser.add_argument("--standin-base", action="store_true", help="build the base from Debian")
    parser.add_argument("--cert-dir", type=Path, help="directory with the registry's ca.crt")
    parser.add_argument("--test-images", action="store_true", help="also pause and app images")
    parser.add_argument("--out", type=Path, default=build.ROOT / "build" / "images")
    args = parser.parse_args(argv)
    try:
        oras = find_oras()
        buildah = Buildah.default()
        bases: dict[str, str] | None
        if args.standin_base:
            bases = standin.bases(buildah, build.PLATFORMS)
        else:
            bases = dict.fromkeys(build.PLATFORMS, args.base_image) if args.base_image else None
        pushed = build.product_images(
            buildah, registry=args.registry, bases=bases, cert_dir=args.cert_dir, out_dir=args.out
        )
        for image in pushed:
            referrers.attach_sboms(oras, image, cert_dir=args.cert_dir)
        if args.test_images:
            pushed += build.test_images(buildah, registry=args.registry, cert_dir=args.cert_dir)
    except (BuildError, ToolsMissing) as e:
        print(f"images: {e}", file=sys.stderr)
        return 1
    for image in pushed:
        print(f"{image.name}: {image.pinned}")
    print(f"index: {build.write_index(pushed, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
