"""What a PodinitNotWrapped Event says (its note) and what it is about (its `regarding`),
from the pod under admission and the core's decision; webhook/server/events.py writes them.

What an Event is about: the pod has no name yet when a controller creates it (generateName),
and no uid in any case (both are set after admission), so the Event goes to what does have
them: the pod's controller (its ownerReference with `controller: true`, else its first),
which `kubectl describe replicaset|job|statefulset|daemonset` shows. A pod without owners is
referred to by name (`kubectl events --for pod/NAME` shows it; `kubectl describe pod` does
not, since it selects Events by the pod's uid, which no admission can know). A pod with
neither owner nor name (generateName only) is noticed about its Namespace, with the
generateName in the note; the writer then looks for the pod the apiserver created
(owners.py): one found, the Event is about it; several, about the namespace (`kubectl events
-n NS`; `regarding.namespace` is the namespace itself, so the Event is stored there); none,
no Event.

Text the pod's author chose (container names, a generateName, images in the reasons) is
cleaned of control and invisible characters, cut, and names are quoted (`clean`, `quoted`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from webhook.core import Mutation, Outcome

# One Event per pod, whatever its number of containers: at most this many are named in it,
# each reason and name cut to these many characters (a valid name has at most 63).
LISTED_CONTAINERS = 3
REASON_LIMIT = 240
NAME_TEXT_LIMIT = 63


class ObjectReference(TypedDict):
    """`regarding` as the API takes it."""

    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: NotRequired[str]


def regarding_of(namespace: str, pod: object) -> tuple[ObjectReference, str]:
    """The object an Event about this pod refers to, and what the note must add to name the
    pod (see the module's docstring)."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    if not isinstance(metadata, Mapping):
        metadata = {}
    owners = metadata.get("ownerReferences")
    owners = [o for o in owners if _is_reference(o)] if isinstance(owners, list) else []
    owner = next((o for o in owners if o.get("controller") is True), None) or next(
        iter(owners), None
    )
    if owner is not None:
        reference: ObjectReference = {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["name"],
            "namespace": namespace,
            "uid": owner["uid"],
        }
        return reference, ""
    name = metadata.get("name")
    if isinstance(name, str) and name:
        return {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace}, ""
    prefix = metadata.get("generateName")
    who = f"pod {quoted(prefix)}*: " if isinstance(prefix, str) and prefix else "pod: "
    return namespace_reference(namespace), who


def namespace_reference(namespace: str) -> ObjectReference:
    return {"apiVersion": "v1", "kind": "Namespace", "name": namespace, "namespace": namespace}


def generate_name(pod: object) -> str | None:
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    prefix = metadata.get("generateName") if isinstance(metadata, Mapping) else None
    return prefix if isinstance(prefix, str) and prefix else None


def _is_reference(owner: object) -> bool:
    fields = ("apiVersion", "kind", "name", "uid")
    return isinstance(owner, Mapping) and all(isinstance(owner.get(k), str) for k in fields)


def note(mutation: Mutation) -> str | None:
    """What went wrong, one note per pod: a denied pod, its failed containers (at most
    LISTED_CONTAINERS named, then how many more), or the pod's own failure (a bad option
    annotation). None when nothing should have been wrapped. Text the pod's author chose
    (container names, images in the reasons) is quoted or cleaned and cut (`clean`)."""
    if mutation.denied:
        return f"pod denied: {clean(mutation.denied, REASON_LIMIT)}"
    failed = [d for d in mutation.decisions if d.outcome is Outcome.FAILED]
    if failed:
        listed = "; ".join(
            f"{quoted(d.container)}: {clean(d.reason, REASON_LIMIT)}"
            for d in failed[:LISTED_CONTAINERS]
        )
        more = len(failed) - LISTED_CONTAINERS
        head = "container" if len(failed) == 1 else f"{len(failed)} containers not wrapped:"
        return f"{head} {listed}" + (f"; and {more} more" if more > 0 else "")
    if mutation.warnings and mutation.pod_reason:
        return f"pod not wrapped: {clean(mutation.pod_reason, REASON_LIMIT)}"
    return None


# C0 and C1 controls, and the invisible format characters that reorder or hide text (bidi
# overrides and isolates, zero-width ones, the BOM): a note is shown by kubectl on a terminal.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def clean(text: str, limit: int) -> str:
    """`text` with control and invisible characters replaced by "?", at most `limit`
    characters (cut with "...")."""
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quoted(name: str) -> str:
    """A name the pod's author chose (a container's, a generateName), cleaned, cut and in
    double quotes, so that it cannot pass for podinit's own words."""
    return '"' + clean(name, NAME_TEXT_LIMIT).replace('"', "'") + '"'
