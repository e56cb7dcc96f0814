"""`registryCaFile`: PEM or DER certificates trusted for registry lookups, and a file that holds
none a one-line error at start (here through `podinit inject` without --offline)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from e2e.pki import CertAuthority
from e2e.registry import Registry
from tests.registry.registry_harness import start_or_skip
from webhook.cli.main import main


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return CertAuthority(tmp_path_factory.mktemp("pki"), "registry")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, pki: CertAuthority) -> Iterator[Registry]:
    """HTTPS with a certificate from the test CA, which no system trust store holds."""
    registry = start_or_skip(tmp_path_factory.mktemp("tls-registry"), ca=pki)
    pusher = registry.pusher()
    pusher.image("team/app", "3", entrypoint=["/entry"], cmd=["serve"])
    pusher.close()
    yield registry
    registry.stop()


def inject(capsys: pytest.CaptureFixture[str], tmp_path: Path, image: str) -> tuple[int, str, str]:
    manifest = tmp_path / "pod.yaml"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    manifest.write_text(yaml.safe_dump(pod))
    code = main(["inject", "-f", str(manifest)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wrapped_command(out: str) -> list[str]:
    return yaml.safe_load(out)["spec"]["containers"][0].get("command", [])  # type: ignore[no-any-return]


def test_a_registry_ca_file_in_pem_is_trusted_for_lookups(
    registry: Registry,
    pki: CertAuthority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(pki.cert))
    code, out, _ = inject(capsys, tmp_path, f"{registry.host}/team/app:3")
    assert (code, wrapped_command(out)) == (0, ["/podinit/podinit", "--", "/entry"])


def test_a_registry_ca_file_in_der_is_trusted_for_lookups(
    registry: Registry,
    pki: CertAuthority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(ssl.PEM_cert_to_DER_cert(pki.cert.read_text()))
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(der))
    code, out, _ = inject(capsys, tmp_path, f"{registry.host}/team/app:3")
    assert (code, wrapped_command(out)) == (0, ["/podinit/podinit", "--", "/entry"])


def test_a_der_file_of_several_certificates_trusts_each_of_them(
    registry: Registry,
    pki: CertAuthority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DER objects back to back (as `cat a.der b.der` makes them): the registry's CA second."""
    other = CertAuthority(tmp_path / "other", "other")
    der = tmp_path / "cas.der"
    der.write_bytes(b"".join(ssl.PEM_cert_to_DER_cert(ca.cert.read_text()) for ca in (other, pki)))
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(der))
    code, out, _ = inject(capsys, tmp_path, f"{registry.host}/team/app:3")
    assert (code, wrapped_command(out)) == (0, ["/podinit/podinit", "--", "/entry"])


def test_a_pem_bundle_with_non_ascii_comments_between_certificates_is_trusted_for_lookups(
    registry: Registry,
    pki: CertAuthority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "bundle.pem"  # the layout of curl's cacert.pem: a comment per certificate
    bundle.write_text(f"# Émetteur : CA privée de test\n{pki.cert.read_text()}")
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(bundle))
    code, out, _ = inject(capsys, tmp_path, f"{registry.host}/team/app:3")
    assert (code, wrapped_command(out)) == (0, ["/podinit/podinit", "--", "/entry"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a certificate\n", "no PEM or DER certificates"),
        (b"", "no PEM or DER certificates"),
        (b"\x30\x82\x01\x00 truncated DER", "no PEM or DER certificates"),
        (
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "no valid PEM certificates",
        ),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n", "no valid PEM certificates"),
    ],
    ids=["text", "empty", "truncated-der", "corrupt-pem", "unterminated-pem"],
)
def test_a_registry_ca_file_without_usable_certificates_is_a_one_line_error_naming_it(
    content: bytes,
    problem: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(content)
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(ca_file))
    code, out, err = inject(capsys, tmp_path, "example/app:1")
    assert (code, out) == (1, "")
    assert err == f"podinit: registryCaFile: {ca_file}: {problem}\n"


def test_a_corrupt_certificate_after_a_valid_one_is_a_one_line_error(
    pki: CertAuthority,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_file = tmp_path / "bundle.pem"
    corrupt = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    ca_file.write_text(pki.cert.read_text() + corrupt)
    monkeypatch.setenv("PODINIT_REGISTRY_CA_FILE", str(ca_file))
    code, _, err = inject(capsys, tmp_path, "example/app:1")
    assert code == 1
    assert err == f"podinit: registryCaFile: {ca_file}: a PEM certificate is not valid\n"
