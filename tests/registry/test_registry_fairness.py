"""Fairness between tenants: one pod naming many images on a slow host (FaultServer's hang/…,
which never answers) must not delay another tenant's lookup on another host (the real
docker-registry) past its own deadline. At the level the server calls: resolve_all, one call
per admission, sharing one resolver."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonpatch
from registry_harness import FaultServer, PlainImages

from tests.server.harness import decoded_patch, make_certs, review, run_webhook
from webhook.core import ImageConfig, LookupFailure
from webhook.registry import ImageResolver, ResolverSettings
from webhook.registry_lookups import resolve_all

SLOW_IMAGES = 110  # the review's pod: more than the shared pool's 100 connections


def settings(faults: FaultServer, plain: PlainImages, **overrides: Any) -> ResolverSettings:
    insecure = frozenset({faults.host, plain.registry.host})
    return ResolverSettings(insecure=insecure, **overrides)


async def admit(
    resolver: ImageResolver, images: list[str], *, budget: float, namespace: str = ""
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    found = await resolve_all(
        resolver,
        images,
        architecture="amd64",
        pull_secrets=[],
        budget=budget,
        namespace=namespace,
    )
    return found, time.monotonic() - started


def test_a_pod_naming_110_images_on_a_slow_host_does_not_delay_another_tenants_lookup(
    faults: FaultServer, plain: PlainImages
) -> None:
    slow = [f"{faults.host}/hang/app{n}:1" for n in range(SLOW_IMAGES)]
    other = f"{plain.registry.host}/app/single:1.0"

    async def main() -> tuple[dict[str, Any], float, dict[str, Any]]:
        async with ImageResolver(settings(faults, plain)) as resolver:
            attacker = asyncio.create_task(admit(resolver, slow, budget=3.5, namespace="evil"))
            await asyncio.sleep(0.5)  # the slow lookups are under way
            found, took = await admit(resolver, [other], budget=1.0, namespace="shop")
            return found, took, (await attacker)[0]

    found, took, attacked = asyncio.run(main())
    assert isinstance(found[other], ImageConfig), found[other]
    assert took < 1.0
    assert all(isinstance(result, LookupFailure) for result in attacked.values())
    assert len(faults.requests) <= 8  # registryLookupsPerAdmission: the rest never started


def test_a_slow_host_holds_only_its_share_of_connections_whoever_asks(
    faults: FaultServer, plain: PlainImages
) -> None:
    """Below resolve_all: 110 lookups straight on the resolver, no admission to cap them."""
    other = f"{plain.registry.host}/app/single:1.0"

    async def main() -> tuple[ImageConfig, float]:
        async with ImageResolver(settings(faults, plain)) as resolver:
            for n in range(SLOW_IMAGES):
                task = asyncio.create_task(
                    resolver.resolve(f"{faults.host}/hang/app{n}:1", timeout=3)
                )
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            await asyncio.sleep(0.5)
            started = time.monotonic()
            config = await resolver.resolve(other, timeout=1.0)
            return config, time.monotonic() - started

    config, took = asyncio.run(main())
    assert config.entrypoint == ("/app",) and took < 1.0
    assert len(faults.requests) <= 8  # registryConnectionsPerHost


def test_a_namespace_keeps_at_most_its_share_of_fetches_running_across_its_pods(
    faults: FaultServer, plain: PlainImages
) -> None:
    """Five pods of one namespace, eight slow images each: the fetches it started and that
    still run (they outlive the admissions) stay within registryLookupsPerNamespace."""
    config = settings(faults, plain, lookups_per_namespace=12, connections_per_host=100)

    async def main() -> int:
        async with ImageResolver(config) as resolver:
            pods = [[f"{faults.host}/hang/pod{p}-app{n}:1" for n in range(8)] for p in range(5)]
            await asyncio.gather(*(admit(resolver, p, budget=1.5, namespace="evil") for p in pods))
            return resolver.stats.tenant_waits

    waits = asyncio.run(main())
    assert len(faults.requests) == 12
    assert waits > 0


def test_served_another_namespaces_pod_is_wrapped_while_one_pod_names_110_slow_images(
    faults: FaultServer, plain: PlainImages, tmp_path: Path
) -> None:
    """The review's case end to end: two AdmissionReviews to a served `podinit serve`, the
    second sent while the first's 110 lookups hang. It is answered wrapped (its own lookup
    was not starved; before the caps it failed with "took over 3.5s" and stayed unwrapped)."""
    insecure = json.dumps([faults.host, plain.registry.host])
    env = {"PODINIT_INSECURE_REGISTRIES": insecure, "PODINIT_INJECTION_MODE": "copy"}
    noisy = {
        "metadata": {"name": "noisy"},
        "spec": {
            "containers": [
                {"name": f"c{n}", "image": f"{faults.host}/hang/app{n}:1"}
                for n in range(SLOW_IMAGES)
            ]
        },
    }
    image = f"{plain.registry.host}/app/single:1.0"
    quiet = {
        "metadata": {"name": "quiet"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    with run_webhook(make_certs(tmp_path), tmp_path, env=env) as server:

        def send(pod: dict[str, Any], namespace: str) -> dict[str, Any]:
            with server.client() as client:
                answer = client.post("/mutate", json=review(pod, namespace=namespace))
                return answer.json()  # type: ignore[no-any-return]

        with ThreadPoolExecutor(1) as pool:
            attack = pool.submit(send, noisy, "evil")
            time.sleep(0.5)  # its lookups are under way
            answer = send(quiet, "shop")
            attacked = attack.result()
    assert "warnings" not in answer["response"], answer["response"]
    [container] = jsonpatch.apply_patch(quiet, decoded_patch(answer))["spec"]["containers"]
    assert container["command"] == ["/podinit/podinit", "--", "/app"]
    assert container["args"] == ["--serve"]
    assert attacked["response"]["allowed"] is True
    assert len(faults.requests) <= 8  # registryLookupsPerAdmission
