"""Platforms: which entry of an image index a node would pull, and describing disagreement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .wire import Descriptor

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}
# containerd's defaults: an arm64 entry without variant is v8, an arm one is v7.
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
# What else each arm variant can run, best first (containerd's platforms.Only).
_COMPATIBLE = {
    ("arm", "v8"): ("v8", "v7", "v6", "v5"),
    ("arm", "v7"): ("v7", "v6", "v5"),
    ("arm", "v6"): ("v6", "v5"),
}


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform a container will run on, as in an index entry (`linux/arm64/v8`)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]`; raises ValueError on anything else."""
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform must look like linux/amd64, got {text[:40]!r}")
        return cls(*parts).normalized()

    def normalized(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower() or _DEFAULT_VARIANT.get(arch, "")
        if arch == "amd64" and variant == "v1":
            variant = ""  # amd64/v1 is plain amd64
        return Platform(self.os.lower(), arch, variant)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


def _platform_of(entry: Descriptor) -> Platform:
    return Platform(entry.os, entry.architecture, entry.variant).normalized()


def select_manifest(entries: Sequence[Descriptor], want: Platform) -> Descriptor | None:
    """The entry a node of platform `want` would pull, or None if none can run there."""
    want = want.normalized()
    ranked = _COMPATIBLE.get((want.architecture, want.variant), (want.variant,))
    best: tuple[int, Descriptor] | None = None
    for entry in entries:
        have = _platform_of(entry)
        if (have.os, have.architecture) != (want.os, want.architecture):
            continue
        if have.variant not in ranked:
            continue  # e.g. amd64/v3 needs CPU features a plain amd64 node may lack
        rank = ranked.index(have.variant)
        if best is None or rank < best[0]:
            best = (rank, entry)
    return best[1] if best else None


def runnable_entries(entries: Iterable[Descriptor]) -> list[Descriptor]:
    """Entries that are images for a real platform (drops buildx attestations `unknown/unknown`)."""
    return [
        e for e in entries if e.os and e.architecture and "unknown" not in (e.os, e.architecture)
    ]


def platform_of(entry: Descriptor) -> Platform:
    return _platform_of(entry)


Argv = tuple[tuple[str, ...], tuple[str, ...]]


def disagreement_note(chosen: Platform, configs: Mapping[Platform, Argv]) -> str | None:
    """A short note if the platforms of one index run different commands, else None."""
    if chosen not in configs or len(set(configs.values())) <= 1:
        return None
    mine = configs[chosen]
    others = sorted(str(p) for p, argv in configs.items() if argv != mine)
    head = f"ENTRYPOINT/CMD differ by platform; used {chosen}, other on "
    listed: list[str] = []
    for index, name in enumerate(others):
        rest = len(others) - index - 1
        tail = f" +{rest}" if rest else ""
        if len(head + ", ".join([*listed, name]) + tail) > _MAX_NOTE:
            return head + ", ".join(listed) + f" +{len(others) - index}"
        listed.append(name)
    return head + ", ".join(listed)


_MAX_NOTE = 100  # the note ends up in an annotation and a warning; keep it readable

__all__ = [
    "Argv",
    "Platform",
    "disagreement_note",
    "platform_of",
    "runnable_entries",
    "select_manifest",
]
