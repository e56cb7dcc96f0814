"""Pull-secret reads against an API endpoint that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from kubernetes.aio import client as kube

from webhook.registry_lookups import PullSecretReader

POD = {"spec": {"serviceAccountName": "builder"}}


@pytest.fixture
def silent_api() -> Iterator[tuple[str, socket.socket]]:
    """A listening socket nobody answers on: requests to it hang until the client gives up."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", server


def test_a_read_that_hangs_gives_up_in_time_and_is_tried_again_by_the_next_admission(
    silent_api: tuple[str, socket.socket],
) -> None:
    url, server = silent_api

    async def main() -> list[tuple[list[bytes], float]]:
        configuration = kube.Configuration(host=url)
        async with kube.ApiClient(configuration) as api:
            reader = PullSecretReader(kube.CoreV1Api(api), read_timeout=0.3)
            results = []
            for _ in range(2):
                started = time.monotonic()
                payloads = await reader.for_pod("shop", POD)
                results.append((payloads, time.monotonic() - started))
                assert reader.known_for_pod("shop", POD) is None  # a timeout is not remembered
            reader.close()
            return results

    results = asyncio.run(main())
    assert [payloads for payloads, _ in results] == [[], []]
    assert all(seconds < 0.3 + 2.0 for _, seconds in results)  # generous slack, not a benchmark
    server.settimeout(1)
    accepted = []
    for _ in range(2):  # each admission made its own attempt
        connection, _ = server.accept()
        accepted.append(connection)
    for connection in accepted:
        connection.close()
