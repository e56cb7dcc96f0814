"""A container's effective argv, and how to put the init in front of it.

Kubernetes runs `command or ENTRYPOINT` followed by `args or CMD` (`args` is ignored for the image
CMD when `command` is set). The kubelet expands `$(VAR)` in command and args, and turns `$$` into
`$`, so strings copied from the image are escaped to reach the app exactly as the image had them.
"""

from __future__ import annotations

from typing import NamedTuple

from webhook.core.images import ImageConfig
from webhook.core.podview import ContainerSlot

SEPARATOR = "--"


def escape(strings: tuple[str, ...] | list[str]) -> list[str]:
    return [s.replace("$", "$$") for s in strings]


def shield(text: str, names: frozenset[str]) -> str:
    """`text` with each `$(NAME)` reference to one of `names` escaped as `$$(NAME)`.

    podinit defines its PODINIT_* variables for the init; a reference to one that the pod left
    undefined stayed as written, and must still do so (the kubelet reads `$$(NAME)` as the
    literal `$(NAME)`). The scan follows the kubelet's grammar: `$$` is skipped whole, and a
    `$(` without `)` is not a reference.
    """
    out: list[str] = []
    i = 0
    while (dollar := text.find("$", i)) != -1:
        out.append(text[i:dollar])
        after = text[dollar + 1 : dollar + 2]
        close = text.find(")", dollar + 2) if after == "(" else -1
        if after == "(" and close != -1:
            reference = text[dollar : close + 1]
            out.append(("$" if text[dollar + 2 : close] in names else "") + reference)
            i = close + 1
        else:  # `$$`, a lone `$`, or an unterminated `$(`: kept, with the character after it
            out.append(text[dollar : dollar + 2])
            i = dollar + 2
    out.append(text[i:])
    return "".join(out)


class Wrap(NamedTuple):
    """How one container's argv changes.

    `command_items` go in front of the existing command (or become the command when there is
    none); `new_args` is set only when the image CMD must be pinned because `args` was unset.
    """

    original: list[str]
    command_items: list[str]
    new_args: list[str] | None


def plan_wrap(slot: ContainerSlot, image: ImageConfig | None, init_path: str) -> Wrap:
    """`image` must be given when the container has no `command` (`images.needs_image`)."""
    command = slot.command
    args = slot.args
    prefix = [init_path, SEPARATOR]
    if command is not None:
        return Wrap(command + (args or []), prefix, None)
    assert image is not None, "a container without command is planned with its image config"
    # `ENTRYPOINT [""]` is how a Dockerfile clears an inherited entrypoint: none at all.
    entrypoint = escape(() if image.entrypoint == ("",) else image.entrypoint)
    if args is not None:
        return Wrap(entrypoint + args, prefix + entrypoint, None)
    cmd = escape(image.cmd)
    return Wrap(entrypoint + cmd, prefix + entrypoint, cmd or None)


def is_wrapped(slot: ContainerSlot, init_path: str) -> bool:
    """Already runs behind podinit, wherever its `INIT --` sits in command and args: another
    webhook may have put its own wrapper in front (`[/wrapper, INIT, --, app]`) or moved the
    command into args (`command: [/vault/vault-env]`, `args: [INIT, --, app]`), and such
    wrappers exec what follows. Other inits: known_inits.py."""
    argv = (slot.command or []) + (slot.args or [])
    return any(
        item == init_path and argv[index + 1 : index + 2] == [SEPARATOR]
        for index, item in enumerate(argv)
    )
