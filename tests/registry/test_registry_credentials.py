"""dockerconfigjson parsing and credential lookup."""

from __future__ import annotations

import base64
import json

import pytest

from webhook.registry import Credential, CredentialsError, Keyring, parse_docker_config


def config(auths: dict[str, dict[str, str]]) -> bytes:
    return json.dumps({"auths": auths}).encode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_auth_field_and_username_password_fields_both_give_credentials() -> None:
    ring = Keyring.from_payloads(
        [
            config(
                {
                    "a.example.com": {"auth": b64("ann:pa:ss")},
                    "b.example.com": {"username": "bob", "password": "hunter2"},
                }
            )
        ]
    )
    assert ring.lookup("a.example.com") == Credential("ann", "pa:ss")
    assert ring.lookup("b.example.com") == Credential("bob", "hunter2")
    assert ring.lookup("c.example.com") is None


@pytest.mark.parametrize(
    "key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"]
)
def test_every_docker_hub_key_matches_docker_hub(key: str) -> None:
    ring = Keyring.from_payloads([config({key: {"auth": b64("hub:pw")}})])
    assert ring.lookup("registry-1.docker.io", "library/nginx") == Credential("hub", "pw")


def test_keys_given_as_urls_match_by_host_and_port() -> None:
    ring = Keyring.from_payloads([config({"https://reg.example.com:5000": {"auth": b64("u:p")}})])
    assert ring.lookup("reg.example.com:5000") == Credential("u", "p")
    assert ring.lookup("reg.example.com") is None


def test_the_first_payload_that_matches_wins() -> None:
    pod = config({"reg.example.com": {"auth": b64("pod:1")}})
    service_account = config(
        {"reg.example.com": {"auth": b64("sa:2")}, "other.example.com": {"auth": b64("sa:3")}}
    )
    ring = Keyring.from_payloads([pod, service_account])
    assert ring.lookup("reg.example.com") == Credential("pod", "1")
    assert ring.lookup("other.example.com") == Credential("sa", "3")


def test_within_one_payload_the_longest_repository_prefix_wins() -> None:
    ring = Keyring.from_payloads(
        [
            config(
                {
                    "reg.example.com": {"auth": b64("all:1")},
                    "reg.example.com/team": {"auth": b64("team:2")},
                }
            )
        ]
    )
    assert ring.lookup("reg.example.com", "team/app") == Credential("team", "2")
    assert ring.lookup("reg.example.com", "teams/app") == Credential("all", "1")


def test_a_wildcard_host_matches_exactly_one_dns_label() -> None:
    ring = Keyring.from_payloads([config({"*.example.com": {"auth": b64("w:1")}})])
    assert ring.lookup("reg.example.com") == Credential("w", "1")
    assert ring.lookup("a.b.example.com") is None


def test_the_legacy_dockercfg_format_without_auths_is_understood() -> None:
    legacy = json.dumps({"reg.example.com": {"auth": b64("old:pw")}})
    assert Keyring.from_payloads([legacy]).lookup("reg.example.com") == Credential("old", "pw")


def test_broken_payloads_are_skipped_without_breaking_the_others() -> None:
    good = config({"reg.example.com": {"auth": b64("u:p")}})
    broken = [
        b"not json",
        b"[1,2]",
        json.dumps({"auths": 3}).encode(),
        config({"reg.example.com": {"auth": "%%%"}}),
        config({"reg.example.com": {"auth": b64("no-colon")}}),
        config({"reg.example.com": {}}),
        json.dumps({"auths": {"reg.example.com": "u:p"}}).encode(),
    ]
    assert Keyring.from_payloads([*broken, good]).lookup("reg.example.com") == Credential("u", "p")


def test_parse_errors_never_quote_the_payload() -> None:
    secret = "s3cr3t-password-value"
    with pytest.raises(CredentialsError) as caught:
        parse_docker_config('{"auths": {"x": {"password": "' + secret + '"}')
    assert secret not in str(caught.value)


def test_secrets_never_appear_in_reprs_or_fingerprints() -> None:
    cred = Credential("ann", "s3cr3t", identity_token="refresh-abc", registry_token="tok-xyz")
    ring = Keyring.from_payloads([config({"r.example.com": {"auth": b64("ann:s3cr3t")}})])
    shown = " ".join([repr(cred), str(cred), repr(ring), cred.fingerprint(b"k" * 32)])
    for secret in ("s3cr3t", "refresh-abc", "tok-xyz", b64("ann:s3cr3t")):
        assert secret not in shown


def test_fingerprints_differ_between_credentials_and_between_processes() -> None:
    key, other_key = b"a" * 32, b"b" * 32
    assert Credential("u", "p").fingerprint(key) == Credential("u", "p").fingerprint(key)
    assert Credential("u", "p").fingerprint(key) != Credential("u", "q").fingerprint(key)
    assert Credential("u", "p").fingerprint(key) != Credential("u", "p").fingerprint(other_key)
