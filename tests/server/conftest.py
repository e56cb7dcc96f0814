"""Fixtures: a CA and a running webhook shared by the server tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.harness import Certs, Webhook, make_certs, run_webhook


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def webhook(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    """A webhook with default settings and no registry reachable (lookups fail fast)."""
    tmp = tmp_path_factory.mktemp("webhook")
    with run_webhook(certs, tmp, env={"PODINIT_TIMEOUT_SECONDS": "2"}) as running:
        yield running


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
