"""Say less to the tenant, more to the operator: a failed lookup is logged once with what
happened (status, the URL it happened at) with secrets cut out, while the message the tenant
gets names the failure class only; httpx's own per-request log is off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from registry_harness import FaultServer, PlainImages, running

from webhook.registry import ImageResolver, RegistryError, ResolverSettings, redact_text
from webhook.server import logs

PRESIGNED = "http://user:hunter2@127.0.0.1:9/bucket?X-Amz-Signature=s3cr3t&X-Amz-Expires=60"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        for name, was in quiet.items():
            logging.getLogger(name).setLevel(was)
            logging.getLogger(name).filters.clear()


def test_a_redirect_to_a_presigned_url_is_logged_without_its_signature_or_userinfo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stand-in: the real registry's redirect middleware drops the base URL's query."""
    registry = FaultServer(redirect_to=PRESIGNED)

    async def main() -> RegistryError:
        settings = ResolverSettings(insecure=frozenset({registry.host}))
        async with ImageResolver(settings) as resolver:
            with pytest.raises(RegistryError) as raised:
                await resolver.resolve(f"{registry.host}/redirect/app:1", timeout=10)
            return raised.value

    with running(registry), caplog.at_level(logging.INFO, logger="webhook.registry"):
        error = asyncio.run(main())
    [record] = [r for r in caplog.records if r.name.startswith("webhook.registry")]
    logged = record.getMessage()
    assert "http://…@127.0.0.1:9/bucket?X-Amz-Signature=…&X-Amz-Expires=…" in logged
    assert "s3cr3t" not in logged and "hunter2" not in logged and "user" not in logged
    assert str(error) == f"registry {registry.host} redirected to plain HTTP"


def test_the_server_log_has_no_httpx_request_lines(
    plain: PlainImages, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    logs.setup("debug")
    host = plain.registry.host

    async def main() -> None:
        async with ImageResolver(ResolverSettings(insecure=frozenset({host}))) as resolver:
            await resolver.resolve(f"{host}/app/single:1.0", timeout=10)

    asyncio.run(main())
    logging.getLogger("httpx").warning("GET %s failed", PRESIGNED)  # what httpx still says
    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert "s3cr3t" not in err and "hunter2" not in err and "X-Amz-Signature=…" in err


def test_redaction_keeps_where_and_drops_secrets() -> None:
    text = f"GET {PRESIGNED} with Authorization: Bearer eyJhbGciOi.abc and Basic dTpw"
    assert redact_text(text) == (
        "GET http://…@127.0.0.1:9/bucket?X-Amz-Signature=…&X-Amz-Expires=… "
        "with Authorization: Bearer … and Basic …"
    )
