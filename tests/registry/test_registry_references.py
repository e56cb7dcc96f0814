"""Image reference parsing and Docker Hub normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.registry import InvalidReference, parse_reference
from webhook.registry.errors import MAX_MESSAGE
from webhook.registry.reference import DOCKER_HUB

DIGEST = "sha256:" + "ab" * 32


def test_a_bare_name_becomes_docker_hub_library_latest() -> None:
    ref = parse_reference("nginx")
    assert str(ref) == "registry-1.docker.io/library/nginx:latest"
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        DOCKER_HUB,
        "library/nginx",
        "latest",
        None,
    )


@pytest.mark.parametrize(
    "image",
    [
        "nginx:1.25",
        "docker.io/nginx:1.25",
        "docker.io/library/nginx:1.25",
        "index.docker.io/library/nginx:1.25",
        "registry-1.docker.io/library/nginx:1.25",
    ],
)
def test_every_spelling_of_docker_hub_is_the_same_image(image: str) -> None:
    assert str(parse_reference(image)) == "registry-1.docker.io/library/nginx:1.25"


def test_a_docker_hub_user_repository_gets_no_library_prefix() -> None:
    assert parse_reference("bitnami/redis").repository == "bitnami/redis"


def test_a_host_with_a_port_is_a_registry_and_not_a_tag() -> None:
    ref = parse_reference("localhost:5000/team/app")
    assert (ref.registry, ref.repository, ref.tag) == ("localhost:5000", "team/app", "latest")
    ref = parse_reference("registry.example.com:8443/app:v2")
    assert (ref.registry, ref.repository, ref.tag) == ("registry.example.com:8443", "app", "v2")


def test_a_first_component_without_dot_or_port_is_a_docker_hub_namespace() -> None:
    ref = parse_reference("myteam/app")
    assert (ref.registry, ref.repository) == (DOCKER_HUB, "myteam/app")


def test_a_digest_reference_has_no_tag_and_is_looked_up_by_digest() -> None:
    ref = parse_reference(f"quay.io/org/app@{DIGEST}")
    assert (ref.tag, ref.digest, ref.reference) == (None, DIGEST, DIGEST)


def test_tag_and_digest_together_look_up_the_digest() -> None:
    ref = parse_reference(f"nginx:1.25@{DIGEST}")
    assert (ref.tag, ref.reference) == ("1.25", DIGEST)
    assert str(ref) == f"registry-1.docker.io/library/nginx:1.25@{DIGEST}"


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("", "empty"),
        (" nginx", "padded"),
        ("Nginx", "bad repository name"),
        ("nginx:", "bad tag"),
        ("nginx:-x", "bad tag"),
        ("nginx@sha256:1234", "bad digest"),
        ("nginx@md5:" + "a" * 32, "bad digest"),
        ("example.com/", "no repository"),
        ("example.com//app", "bad repository name"),
        ("exa_mple.com/app", "bad registry host"),
        ("app/with space", "bad repository name"),
        ("a/" + "b" * 300, "too long"),
    ],
)
def test_malformed_references_raise_invalid_reference_saying_why(image: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference(image)
    assert reason in str(caught.value)
    assert len(str(caught.value)) <= MAX_MESSAGE


def test_a_very_long_malformed_reference_still_gives_a_short_message() -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_reference("x" * 5000 + ":!")
    assert len(str(caught.value)) <= MAX_MESSAGE


component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
hosts = st.sampled_from(["quay.io", "localhost:5000", "registry.example.com:8443", "10.0.0.1"])
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(host=hosts, path=st.lists(component, min_size=1, max_size=3), tag=tags)
def test_any_valid_reference_round_trips_through_its_canonical_form(
    host: str, path: list[str], tag: str
) -> None:
    ref = parse_reference(f"{host}/{'/'.join(path)}:{tag}")
    assert parse_reference(str(ref)) == ref
    assert (ref.registry, ref.repository, ref.tag) == (host, "/".join(path), tag)


@given(st.text(max_size=80))
def test_parsing_arbitrary_text_either_succeeds_or_raises_invalid_reference(text: str) -> None:
    try:
        parse_reference(text)
    except InvalidReference as err:
        assert len(str(err)) <= MAX_MESSAGE
