"""Hypothesis strategies for pods of every container shape, and image lookups to go with them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from webhook.core import ImageConfig, LookupFailure
from webhook.core.images import ImageResult

IMAGES = ("example/a:1", "example/b:2", "registry.local:5000/team/c@sha256:" + "0" * 64, "busybox")
INJECT_INITS = "podinit.dev/inject-init-containers"
DIGEST = "sha256:" + "d" * 64  # what a registry answered a tag with
names = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
# Argv strings with the characters that matter: `$(VAR)`, `$$`, spaces, slashes, unicode, and
# references to the variables `containers` defines (ENV_NAMES) or leaves undefined, including
# PODINIT_GRACE, which podinit defines for the init when the pod has a grace annotation.
ENV_NAMES = ("A", "PODINIT_GRACE", "B")
_pieces = (
    "$(A)",
    "$(B)",
    "$$(A)",
    "$$",
    "$",
    "$(",
    "$(C)",
    "$(A",
    ")",
    "a",
    " ",
    "é",
    "$(PODINIT_GRACE)",
    "$$(PODINIT_GRACE)",
)
words = st.one_of(
    st.text(st.sampled_from("ab $()/-=~.éx"), min_size=0, max_size=8),
    st.lists(st.sampled_from(_pieces), max_size=4).map("".join),
)
argvs = st.one_of(st.none(), st.just([]), st.lists(words, min_size=1, max_size=4))
known_init_argv = st.sampled_from([["tini", "--"], ["/usr/bin/dumb-init"], ["catatonit", "-g"]])


def mounts(volume_names: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    paths = st.sampled_from(["/data", "/podinit", "/etc/conf", "/podinit-1", "/cache"])
    return st.lists(
        st.fixed_dictionaries({"name": st.sampled_from(volume_names), "mountPath": paths}),
        max_size=2,
        unique_by=lambda m: m["mountPath"],
    )


@st.composite
def containers(
    draw: st.DrawFn, name: str, volume_names: list[str], sidecar: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": draw(st.sampled_from(IMAGES))}
    command = draw(st.one_of(argvs, known_init_argv))
    args = draw(argvs)
    if command is not None:
        body["command"] = command
    if args is not None:
        body["args"] = args
    if draw(st.booleans()):
        body["env"] = [{"name": draw(st.sampled_from(ENV_NAMES)), "value": "1"}]
    if volume_names and draw(st.booleans()):
        body["volumeMounts"] = draw(mounts(volume_names))
    if sidecar:
        body["restartPolicy"] = "Always"
    return body


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    all_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    split = draw(st.integers(0, len(all_names) - 1))
    volume_names = draw(
        st.lists(st.sampled_from(["podinit", "data", "conf", "podinit-1"]), unique=True, max_size=3)
    )
    spec: dict[str, Any] = {
        "containers": [draw(containers(n, volume_names, False)) for n in all_names[split:]],
    }
    inits = [draw(containers(n, volume_names, draw(st.booleans()))) for n in all_names[:split]]
    if inits:
        spec["initContainers"] = inits
    if volume_names:
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in volume_names]
    metadata: dict[str, Any] = {"name": "p", "namespace": "ns"}
    annotations = draw(
        st.dictionaries(
            st.sampled_from(
                ["a/b", "x~y", "podinit.dev/grace", "podinit.dev/skip-containers", INJECT_INITS]
            ),
            st.sampled_from(["1", "2.5", all_names[0], "z", "true"]),
            max_size=3,
        )
    )
    if draw(st.booleans()):
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


results: st.SearchStrategy[ImageResult] = st.one_of(
    st.builds(
        ImageConfig,
        entrypoint=st.lists(words, max_size=3).map(tuple),
        cmd=st.lists(words, max_size=3).map(tuple),
        digest=st.sampled_from([None, DIGEST]),
    ),
    st.builds(ImageConfig, entrypoint=known_init_argv.map(tuple)),
    st.just(LookupFailure("registry down")),
)
lookups = st.dictionaries(st.sampled_from(IMAGES), results)
