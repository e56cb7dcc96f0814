"""Pure parts: platform selection, wire parsing, challenges, LRU/TTL, single flight."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.registry import BadResponse, Platform, RegistryError
from webhook.registry.auth import Challenge, TokenCache, parse_challenges
from webhook.registry.cache import LRU, SingleFlight
from webhook.registry.errors import MAX_MESSAGE
from webhook.registry.platforms import disagreement_note, select_manifest
from webhook.registry.wire import (
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    parse_image_config,
    parse_manifest,
)

D = "sha256:" + "1" * 64


def entry(arch: str, variant: str = "", os: str = "linux", n: int = 0) -> Descriptor:
    return Descriptor("m", f"sha256:{n:064d}", 1, os, arch, variant)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- platforms ---------------------------------------------------------------------------------


def test_the_requested_architecture_is_chosen_from_an_index() -> None:
    entries = [entry("amd64", n=1), entry("arm64", "v8", n=2), entry("unknown", os="unknown", n=3)]
    assert select_manifest(entries, Platform.parse("linux/arm64")) == entries[1]
    assert select_manifest(entries, Platform.parse("linux/amd64")) == entries[0]
    assert select_manifest(entries, Platform.parse("linux/s390x")) is None


def test_arm64_entries_with_and_without_the_v8_variant_match_each_other() -> None:
    assert select_manifest([entry("arm64", n=1)], Platform.parse("linux/arm64/v8")) is not None
    assert select_manifest([entry("arm64", "v8", n=1)], Platform.parse("linux/arm64")) is not None


def test_arm_v7_prefers_v7_but_runs_v6_and_never_v8_only_images() -> None:
    v6, v7 = entry("arm", "v6", n=1), entry("arm", "v7", n=2)
    assert select_manifest([v6, v7], Platform.parse("linux/arm/v7")) == v7
    assert select_manifest([v6], Platform.parse("linux/arm/v7")) == v6
    assert select_manifest([v7], Platform.parse("linux/arm/v6")) is None


def test_kernel_style_architecture_names_are_understood() -> None:
    assert Platform.parse("linux/x86_64") == Platform("linux", "amd64")
    assert Platform.parse("Linux/aarch64") == Platform("linux", "arm64", "v8")
    with pytest.raises(ValueError):
        Platform.parse("amd64")


def test_a_note_names_the_platforms_that_disagree_and_stays_short() -> None:
    amd, arm = Platform("linux", "amd64"), Platform("linux", "arm64", "v8")
    assert disagreement_note(amd, {amd: (("/a",), ()), arm: (("/a",), ())}) is None
    note = disagreement_note(amd, {amd: (("/a",), ()), arm: (("/b",), ())})
    assert note is not None and "linux/arm64/v8" in note and len(note) <= MAX_MESSAGE
    many = {Platform("linux", f"arch{i}"): ((f"/{i}",), ()) for i in range(20)}
    many[amd] = (("/a",), ())
    note = disagreement_note(amd, many)
    assert note is not None and len(note) <= MAX_MESSAGE


# -- wire --------------------------------------------------------------------------------------


def test_an_oci_manifest_without_media_type_is_recognised_by_its_shape() -> None:
    body = json.dumps(
        {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D, "size": 3}, "layers": []}
    ).encode()
    assert parse_manifest(body, None) == Manifest(Descriptor("x", D, 3))


def test_an_index_keeps_each_entrys_platform() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "m",
                    "digest": D,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                }
            ],
        }
    ).encode()
    parsed = parse_manifest(body, "application/vnd.oci.image.index.v1+json")
    assert parsed == Index((Descriptor("m", D, 1, "linux", "arm64", "v8"),))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\xff",
        b"[]",
        b'{"schemaVersion": 1}',
        b'{"schemaVersion": 2}',
        b'{"manifests": 3}',
        b'{"manifests": [{"digest": "sha256:zz"}]}',
        b'{"config": {"mediaType": "x", "digest": "' + D.encode() + b'", "size": -1}}',
    ],
)
def test_garbage_manifests_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_manifest(body, "application/vnd.oci.image.manifest.v1+json")


def test_null_or_missing_entrypoint_and_cmd_are_empty() -> None:
    assert parse_image_config(b'{"config": {"Entrypoint": null}}') == ((), ())
    assert parse_image_config(b"{}") == ((), ())
    assert parse_image_config(b'{"config": {"Cmd": ["a", "b"]}}') == ((), ("a", "b"))


@pytest.mark.parametrize(
    "body", [b'{"config": {"Cmd": "sh"}}', b'{"config": {"Cmd": [1]}}', b'{"config": []}']
)
def test_malformed_entrypoint_or_cmd_raises_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_image_config(body)


# -- auth challenges and tokens ----------------------------------------------------------------


def test_a_bearer_challenge_yields_realm_service_and_scope() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            "https://auth.docker.io/token",
            "registry.docker.io",
            "repository:library/nginx:pull",
        )
    ]


def test_several_challenges_in_one_header_are_all_seen() -> None:
    found = parse_challenges('Basic realm="r", Bearer realm="https://a/t",service=s')
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[1].service == "s"


def test_tokens_expire_early_and_are_kept_per_credential() -> None:
    clock = Clock()
    cache = TokenCache(max_entries=2, clock=clock)
    cache.put(("realm", "svc", "scope", "fp-a"), "token-a", 60)
    assert cache.get(("realm", "svc", "scope", "fp-b")) is None
    assert cache.get(("realm", "svc", "scope", "fp-a")) == "token-a"
    clock.now = 55
    assert cache.get(("realm", "svc", "scope", "fp-a")) is None


# -- LRU and single flight ---------------------------------------------------------------------


def test_the_lru_evicts_the_least_recently_used_entry() -> None:
    lru: LRU[str, int] = LRU(max_entries=2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)


def test_lru_entries_with_a_ttl_expire_and_others_do_not() -> None:
    clock = Clock()
    lru: LRU[str, int] = LRU(max_entries=10, clock=clock)
    lru.put("short", 1, ttl=5)
    lru.put("forever", 2)
    clock.now = 1e9
    assert (lru.get("short"), lru.get("forever")) == (None, 2)


def test_concurrent_callers_of_one_key_share_one_execution() -> None:
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    async def main() -> list[int]:
        flight: SingleFlight[str, int] = SingleFlight()
        return await asyncio.gather(*(flight.run("k", work) for _ in range(100)))

    assert asyncio.run(main()) == [42] * 100
    assert calls == 1


def test_a_cancelled_caller_does_not_cancel_the_shared_work_for_the_others() -> None:
    async def main() -> int:
        flight: SingleFlight[str, int] = SingleFlight()
        release = asyncio.Event()

        async def work() -> int:
            await release.wait()
            return 7

        impatient = asyncio.create_task(flight.run("k", work))
        patient = asyncio.create_task(flight.run("k", work))
        await asyncio.sleep(0)
        impatient.cancel()
        await asyncio.sleep(0)
        release.set()
        return await patient

    assert asyncio.run(main()) == 7


def test_error_messages_are_cut_to_a_warning_sized_length() -> None:
    assert len(str(RegistryError("x" * 500))) <= MAX_MESSAGE


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": json_values,
        "mediaType": st.sampled_from([OCI_INDEX, OCI_MANIFEST, "x"]) | json_values,
        "manifests": json_values,
        "config": json_values,
    },
)


@given(st.binary(max_size=200) | manifest_like.map(lambda d: json.dumps(d).encode()))
def test_any_registry_body_parses_or_raises_bad_response_and_nothing_else(body: bytes) -> None:
    for parse in (lambda: parse_manifest(body, None), lambda: parse_image_config(body)):
        try:
            parse()
        except BadResponse as err:
            assert len(str(err)) <= MAX_MESSAGE


@given(st.text(max_size=200))
def test_any_www_authenticate_header_parses_without_raising(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()
