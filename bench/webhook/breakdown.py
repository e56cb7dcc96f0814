"""Where one cache-hit admission spends its CPU, in process (no HTTP, no TLS): the stages of
`Admitter.admit` for the same pod `bench_webhook.py` sends, timed with process CPU time
(steadier than wall time on a busy machine), best of --repeat runs of --n calls each.

Run: .venv/bin/python bench/webhook/breakdown.py [--n 3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]


def best(n: int, repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(n):
            fn()
        times.append((time.process_time() - started) / n)
    return min(times) * 1e6


async def best_async(n: int, repeat: int, fn: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(n):
            await fn()
        times.append((time.process_time() - started) / n)
    return min(times) * 1e6


async def measure(body: bytes, host: str, n: int, repeat: int) -> list[tuple[str, float]]:
    from webhook.config import load
    from webhook.core import prepare
    from webhook.registry import Platform
    from webhook.registry_lookups import make_resolver, resolve_all
    from webhook.server import logs
    from webhook.server.admission import Admitter
    from webhook.server.metrics import Metrics
    from webhook.server.review import encode_patch, parse, respond

    config = load(None, insecure_registries=[host])
    logs.setup(config.log_level)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the handler keeps it
    for handler in logging.getLogger().handlers:
        handler.stream = devnull  # type: ignore[attr-defined]
    settings = config.inject_settings()
    resolver = make_resolver(config)
    metrics = Metrics(resolver.stats)
    admitter = Admitter(
        settings=settings, metrics=metrics, resolver=resolver, budget=config.lookup_budget
    )
    request = parse(body)
    pod = request["object"]
    first = await admitter.admit(request)
    assert "patch" in first["response"], first
    plan = prepare(pod, settings)
    wanted = plan.images
    found = await admitter._look_up(plan, pod, "shop")
    mutation = plan.decide(found)
    loop = asyncio.get_running_loop()
    platform = Platform(architecture=plan.architecture)

    async def resolve_sequentially() -> None:
        for image in sorted(wanted):
            await resolver.resolve(image, platform=platform, deadline=loop.time() + 3)

    async def whole() -> None:
        orjson.dumps(await admitter.admit(parse(body)))

    rows = [
        (
            "no-op's work: orjson.loads + small dumps",
            best(
                n,
                repeat,
                lambda: orjson.dumps(
                    {"uid": orjson.loads(body)["request"]["uid"], "allowed": True}
                ),
            ),
        ),
        ("review.parse", best(n, repeat, lambda: parse(body))),
        ("prepare (core: read the pod once)", best(n, repeat, lambda: prepare(pod, settings))),
        (
            "Admitter._look_up (2 cache hits)",
            await best_async(n, repeat, lambda: admitter._look_up(plan, pod, "shop")),
        ),
        ("  of which plan.architecture", best(n, repeat, lambda: plan.architecture)),
        (
            "  of which resolve_all",
            await best_async(
                n,
                repeat,
                lambda: resolve_all(
                    resolver,
                    wanted,
                    architecture=platform.architecture,
                    pull_secrets=(),
                    budget=3,
                ),
            ),
        ),
        ("  vs resolver.resolve x2, no tasks", await best_async(n, repeat, resolve_sequentially)),
        ("plan.decide (core)", best(n, repeat, lambda: plan.decide(found))),
        ("Admitter._count (metrics)", best(n, repeat, lambda: admitter._count(mutation))),
        (
            "Admitter._log (one JSON line)",
            best(n, repeat, lambda: admitter._log("uid", request, mutation)),
        ),
        (
            "respond + orjson.dumps",
            best(
                n,
                repeat,
                lambda: orjson.dumps(
                    respond("uid", patch=encode_patch(mutation.patch), warnings=mutation.warnings)
                ),
            ),
        ),
        ("whole: parse + admit + dumps", await best_async(n, repeat, whole)),
    ]
    await resolver.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from pod import realistic_pod, review_bytes

    from e2e.registry import Pusher, start_registry

    with tempfile.TemporaryDirectory(prefix="bench-webhook-breakdown-") as tmp:
        registry = start_registry(Path(tmp) / "registry")
        try:
            pusher = Pusher(registry)
            pusher.image("shop/api", "1.0", entrypoint=["/usr/local/bin/api"], cmd=["--serve"])
            pusher.image("shop/worker", "2.3", entrypoint=["/bin/worker"], cmd=["run"], docker=True)
            pusher.close()
            body = review_bytes(
                realistic_pod(f"{registry.host}/shop/api:1.0", f"{registry.host}/shop/worker:2.3")
            )
            rows = asyncio.run(measure(body, registry.host, args.n, args.repeat))
        finally:
            registry.stop()
    whole = rows[-1][1]
    print(f"| stage ({len(body)}-byte review, cache hit) | CPU µs | of the whole |")
    print("|---|---:|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:.1f} | {micros / whole:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
