"""Resolver benchmark against a real local `docker-registry` (127.0.0.1 only).

1. N concurrent lookups of one uncached image: registry requests made (target: exactly one
   manifest and one config fetch) and the latency callers saw.
2. The same with credentials against a token-auth registry (one token fetch too).
3. Cache hits: lookups per second and per-call latency, without and with pull secrets
   (whose dockerconfigjson is parsed on every call).

Run: .venv/bin/python bench/registry/bench_resolver.py [--concurrency 1000] [--hits 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from e2e.pki import CertAuthority
from e2e.registry import CountingTransport, docker_config, start_registry
from e2e.registrytoken import TokenIssuer, TokenServer
from webhook.registry import ImageResolver, ResolverSettings
from webhook.registry.client import make_transport

USER, PASSWORD = "alice", "wonderland"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": round(at(0.50), 3),
        "p99_ms": round(at(0.99), 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def cold_burst(
    image: str, n: int, settings: ResolverSettings, ca: str | None, secrets: list[bytes]
) -> dict[str, Any]:
    transport = CountingTransport(make_transport(ca_bundle=ca))
    async with ImageResolver(settings, transport=transport) as resolver:

        async def one() -> float:
            started = time.perf_counter()
            await resolver.resolve(image, pull_secrets=secrets, timeout=30)
            return time.perf_counter() - started

        started = time.perf_counter()
        latencies = await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - started
        return {
            "lookups": n,
            "wall_s": round(wall, 4),
            "manifest_requests": transport.count("manifests", status=None),
            "manifest_200": transport.count("manifests"),
            "config_requests": transport.count("blobs", status=None),
            "all_requests": len(transport.seen),
            "fetch_sequences": resolver.stats.fetches,
            **percentiles(list(latencies)),
        }


async def cache_hits(
    image: str, n: int, settings: ResolverSettings, secrets: list[bytes]
) -> dict[str, Any]:
    async with ImageResolver(settings) as resolver:
        await resolver.resolve(image, pull_secrets=secrets, timeout=30)
        latencies = []
        started = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            await resolver.resolve(image, pull_secrets=secrets, timeout=5)
            latencies.append(time.perf_counter() - t)
        wall = time.perf_counter() - started
        assert resolver.stats.fetches == 1
        return {"lookups": n, "per_second": round(n / wall), **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--hits", type=int, default=50_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = CertAuthority(root / "pki", "registry")
        plain = start_registry(root / "plain")
        issuer = TokenIssuer(root / "signer")
        server = TokenServer(issuer, users={USER: PASSWORD})
        server.start()
        token = start_registry(root / "token", ca=ca, auth=issuer.auth(server.realm))
        try:
            pusher = plain.pusher()
            pusher.image("bench/app", "1.0", entrypoint=["/app"], cmd=["run"])
            pusher.close()
            pusher = token.pusher(bearer=issuer)
            pusher.image("team/app", "1.0", entrypoint=["/app"], cmd=["run"])
            pusher.close()
            plain_image = f"{plain.host}/bench/app:1.0"
            plain_settings = ResolverSettings(insecure=frozenset({plain.host}))
            token_image = f"{token.host}/team/app:1.0"
            token_settings = ResolverSettings(
                insecure=frozenset({f"127.0.0.1:{server.port}"}), ca_bundle=str(ca.cert)
            )
            secrets = [docker_config(token.host, USER, PASSWORD)]
            other = [docker_config("other.example.com", USER, PASSWORD)]
            results["cold_anonymous"] = asyncio.run(
                cold_burst(plain_image, args.concurrency, plain_settings, None, [])
            )
            results["cold_token_auth"] = asyncio.run(
                cold_burst(token_image, args.concurrency, token_settings, str(ca.cert), secrets)
            )
            results["cold_token_auth"]["token_requests"] = len(server.requests)
            results["hits_anonymous"] = asyncio.run(
                cache_hits(plain_image, args.hits, plain_settings, [])
            )
            results["hits_with_two_pull_secrets"] = asyncio.run(
                cache_hits(plain_image, args.hits, plain_settings, [*other, *other])
            )
        finally:
            plain.stop()
            token.stop()
            server.stop()
    print(json.dumps(results, indent=2))
    cold = results["cold_anonymous"]
    ok = cold["manifest_requests"] == 1 and cold["config_requests"] == 1
    print(
        f"single flight: {args.concurrency} concurrent lookups -> "
        f"{cold['manifest_requests']} manifest + {cold['config_requests']} config requests "
        f"({'OK' if ok else 'FAIL'})"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
