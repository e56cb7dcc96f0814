"""`podinit scan`: which running pods lack an init, decided by the same core as the webhook.

Reads pods through the Kubernetes API, looks their images up with the pods' pull secrets, and
prints the decision per container; `-o image-config` writes what it found in the format that
`podinit inject --image-config` reads, for air-gapped use.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import aiohttp
import yaml
from kubernetes.aio import client as kube
from kubernetes.aio import config as kube_config

from webhook.config import Config
from webhook.core import ImageConfig, ImageResult, InjectSettings, prepare
from webhook.kube import api_client, close
from webhook.registry import ImageResolver
from webhook.registry_lookups import PullSecretReader, make_resolver, resolve_all

PAGE = 500


class ScanError(Exception):
    """The cluster cannot be read; the message says what failed."""


@dataclass(frozen=True, slots=True)
class Row:
    namespace: str
    pod: str
    container: str
    decision: str


async def list_pods(core: kube.CoreV1Api, namespace: str | None) -> AsyncIterator[dict[str, Any]]:
    """Raw pod dicts, page by page (no model round trip)."""
    token: str | None = None
    while True:
        if namespace is None:
            response = await core.list_pod_for_all_namespaces_without_preload_content(
                limit=PAGE, _continue=token
            )
        else:
            response = await core.list_namespaced_pod_without_preload_content(
                namespace, limit=PAGE, _continue=token
            )
        page = json.loads(await response.read())
        for pod in page.get("items", []):
            yield pod
        token = page.get("metadata", {}).get("continue")
        if not token:
            return


async def scan(
    config: Config, settings: InjectSettings, *, namespace: str | None
) -> tuple[list[Row], dict[str, ImageResult]]:
    resolver: ImageResolver = make_resolver(config)  # a bad registryCaFile: before any reading
    try:
        api = await api_client(config, user_kubeconfig=True)
    except BaseException:
        await resolver.aclose()
        raise
    assert api is not None
    rows: list[Row] = []
    found: dict[str, ImageResult] = {}
    try:
        core = kube.CoreV1Api(api)
        secrets = PullSecretReader(core)
        async for pod in list_pods(core, namespace):
            metadata = pod.get("metadata", {})
            ns, name = metadata.get("namespace", ""), metadata.get("name", "")
            plan = prepare(pod, settings)
            if plan.images:
                payloads = await secrets.for_pod(ns, pod) if config.pull_secret_lookups else []
                found |= await resolve_all(
                    resolver,
                    plan.images,
                    architecture=plan.architecture,
                    pull_secrets=payloads,
                    budget=config.lookup_budget,
                )
            mutation = plan.decide(found)
            if mutation.pod_reason:
                rows.append(Row(ns, name, "*", f"skipped: {mutation.pod_reason}"))
            rows += [Row(ns, name, d.container, d.summary) for d in mutation.decisions]
    finally:
        await resolver.aclose()
        await close(api)
    return rows, found


def _kubeconfig_source(config: Config) -> str:
    """The kubeconfig file the client read: the setting, else $KUBECONFIG or ~/.kube/config as
    the client saw them when it was imported."""
    if config.kubeconfig is not None:
        return str(config.kubeconfig)
    return str(kube_config.KUBE_CONFIG_DEFAULT_LOCATION)


def _describe(error: Exception) -> str:
    if isinstance(error, kube.ApiException):
        return f"HTTP {error.status} {error.reason}"
    return str(error) or type(error).__name__


def write(rows: list[Row], found: dict[str, ImageResult], output: str, out: TextIO) -> None:
    if output == "json":
        json.dump([asdict(r) for r in rows], out, indent=2)
        out.write("\n")
    elif output == "image-config":
        configs = {
            image: {"entrypoint": list(result.entrypoint), "cmd": list(result.cmd)}
            for image, result in sorted(found.items())
            if isinstance(result, ImageConfig)
        }
        yaml.safe_dump(configs, out, sort_keys=False)
    else:
        table = [("NAMESPACE", "POD", "CONTAINER", "DECISION")]
        table += [(r.namespace, r.pod, r.container, r.decision) for r in rows]
        widths = [max(len(line[column]) for line in table) for column in range(3)]
        for ns, pod, container, decision in table:
            out.write(f"{ns:{widths[0]}}  {pod:{widths[1]}}  {container:{widths[2]}}  {decision}\n")


def run(config: Config, settings: InjectSettings, *, namespace: str | None, output: str) -> int:
    try:
        rows, found = asyncio.run(scan(config, settings, namespace=namespace))
    except kube_config.ConfigException as error:
        raise ScanError(f"cannot load a kubeconfig: {error}") from error
    except yaml.YAMLError as error:  # only kubeconfigs are read as YAML here
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ScanError(
            f"cannot load a kubeconfig: {_kubeconfig_source(config)}{where}: not valid YAML"
        ) from error
    except (kube.ApiException, aiohttp.ClientError, OSError) as error:
        raise ScanError(f"cannot list pods: {_describe(error)}") from error
    write(rows, found, output, sys.stdout)
    return 0
