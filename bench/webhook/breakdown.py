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
from dataclasses import dataclass
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


@dataclass
class Subject:
    """What the stages are timed on: a real admitter after one real admission of `body` (so
    the registry lookups are cache hits), and the intermediate values of that admission."""

    body: bytes
    settings: Any
    resolver: Any
    admitter: Any
    request: dict[str, Any]
    plan: Any
    found: Any
    mutation: Any
    platform: Any

    @property
    def pod(self) -> dict[str, Any]:
        return self.request["object"]


def _quiet_logs(level: str) -> None:
    """podinit's logging set up as served, but written to /dev/null: its cost is timed,
    not printed."""
    from webhook.server import logs

    logs.setup(level)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the handler keeps it
    for handler in logging.getLogger().handlers:
        handler.stream = devnull  # type: ignore[attr-defined]


async def admitted_once(body: bytes, host: str) -> Subject:
    from webhook.config import load
    from webhook.core import prepare
    from webhook.registry import Platform
    from webhook.registry_lookups import make_resolver
    from webhook.server.admission import Admitter
    from webhook.server.metrics import Metrics
    from webhook.server.review import parse

    config = load(None, insecure_registries=[host])
    _quiet_logs(config.log_level)
    settings = config.inject_settings()
    resolver = make_resolver(config)
    admitter = Admitter(
        settings=settings,
        metrics=Metrics(resolver.stats),
        resolver=resolver,
        budget=config.lookup_budget,
    )
    request = parse(body)
    first = await admitter.admit(request)
    assert "patch" in first["response"], first
    plan = prepare(request["object"], settings)
    found = await admitter._look_up(plan, request["object"], "shop")
    return Subject(
        body=body,
        settings=settings,
        resolver=resolver,
        admitter=admitter,
        request=request,
        plan=plan,
        found=found,
        mutation=plan.decide(found),
        platform=Platform(architecture=plan.architecture),
    )


async def measure(body: bytes, host: str, n: int, repeat: int) -> list[tuple[str, float]]:
    """CPU µs per call of each stage, in the order an admission runs them; the last row is
    the whole admission."""
    subject = await admitted_once(body, host)
    rows = [
        *_reading_rows(subject, n, repeat),
        *await _lookup_rows(subject, n, repeat),
        *_answering_rows(subject, n, repeat),
        ("whole: parse + admit + dumps", await _whole(subject, n, repeat)),
    ]
    await subject.resolver.aclose()
    return rows


def _reading_rows(s: Subject, n: int, repeat: int) -> list[tuple[str, float]]:
    from webhook.core import prepare
    from webhook.server.review import parse

    def noop_work() -> bytes:  # what the no-op server does with the same body
        return orjson.dumps({"uid": orjson.loads(s.body)["request"]["uid"], "allowed": True})

    return [
        ("no-op's work: orjson.loads + small dumps", best(n, repeat, noop_work)),
        ("review.parse", best(n, repeat, lambda: parse(s.body))),
        ("prepare (core: read the pod once)", best(n, repeat, lambda: prepare(s.pod, s.settings))),
    ]


async def _lookup_rows(s: Subject, n: int, repeat: int) -> list[tuple[str, float]]:
    from webhook.registry_lookups import resolve_all

    loop = asyncio.get_running_loop()
    wanted = s.plan.images

    async def resolve_sequentially() -> None:
        for image in sorted(wanted):
            await s.resolver.resolve(image, platform=s.platform, deadline=loop.time() + 3)

    def resolve_concurrently() -> Awaitable[Any]:
        return resolve_all(
            s.resolver,
            wanted,
            architecture=s.platform.architecture,
            pull_secrets=(),
            budget=3,
        )

    return [
        (
            "Admitter._look_up (2 cache hits)",
            await best_async(n, repeat, lambda: s.admitter._look_up(s.plan, s.pod, "shop")),
        ),
        ("  of which plan.architecture", best(n, repeat, lambda: s.plan.architecture)),
        ("  of which resolve_all", await best_async(n, repeat, resolve_concurrently)),
        ("  vs resolver.resolve x2, no tasks", await best_async(n, repeat, resolve_sequentially)),
    ]


def _answering_rows(s: Subject, n: int, repeat: int) -> list[tuple[str, float]]:
    from webhook.server.review import encode_patch, respond

    def answer() -> bytes:
        patch = encode_patch(s.mutation.patch)
        return orjson.dumps(respond("uid", patch=patch, warnings=s.mutation.warnings))

    return [
        ("plan.decide (core)", best(n, repeat, lambda: s.plan.decide(s.found))),
        ("Admitter._count (metrics)", best(n, repeat, lambda: s.admitter._count(s.mutation))),
        (
            "Admitter._log (one JSON line)",
            best(n, repeat, lambda: s.admitter._log("uid", s.request, s.mutation)),
        ),
        ("respond + orjson.dumps", best(n, repeat, answer)),
    ]


async def _whole(s: Subject, n: int, repeat: int) -> float:
    from webhook.server.review import parse

    async def whole() -> None:
        orjson.dumps(await s.admitter.admit(parse(s.body)))

    return await best_async(n, repeat, whole)


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
