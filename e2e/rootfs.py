"""Root filesystems laid out by hand for runc (e2e.runtime): a busybox image from Debian's
static busybox, and the Dockerfile's FROM-scratch ``init`` stage."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2e.ocispec import NONROOT_UID

BUSYBOX = Path("/bin/busybox")
# Applets linked into a busybox rootfs: what the tests' and the demo's shells call.
APPLETS = (
    "sh", "ash", "sleep", "ps", "cat", "echo", "ls", "id", "true", "false", "kill", "env",
    "stat", "wc", "grep", "head", "touch", "mkdir", "rm", "test", "[", "printf", "cp", "pidof",
    "uname", "date", "seq", "tr", "usleep",
)  # fmt: skip


def busybox_rootfs(dir: Path, busybox: Path = BUSYBOX) -> Path:
    """A minimal image root: /bin/busybox, applet symlinks, /etc/passwd with uid 65532.

    The binary is copied, not linked: a hard link would share its inode (and so its mode
    and owner) with the host's /bin/busybox, and a container must not be able to alter it.
    """
    root = Path(dir)
    for sub in ("bin", "proc", "dev", "sys", "etc", "root"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    # /tmp is world-writable and sticky, as in any distribution image.
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        link = root / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    # Names for `ps` and `id`; 65532 is the "nonroot" user of distroless images.
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    (root / "etc" / "group").write_text(f"root:x:0:\nnonroot:x:{NONROOT_UID}:\n")
    return root


def init_image_rootfs(dir: Path, podinit_binary: Path) -> Path:
    """The Dockerfile's ``init`` stage: FROM scratch, then ``COPY --chmod=0755 podinit /podinit``.

    Nothing else: no /proc, no /dev, no /etc. runc creates the mount points it needs,
    as it does on the snapshot a container engine would hand it.
    """
    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(podinit_binary, root / "podinit")
    (root / "podinit").chmod(0o755)
    return root
