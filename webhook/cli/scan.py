"""`podinit scan`: which running pods lack an init, decided by the same core as the webhook.

Reads the podinit webhook configuration, the namespaces and the pods through the Kubernetes
API, looks the pods' images up with their pull secrets, and prints a state per container
(core/observed.py: wrapped, skipped, failed, slipped, unselected) and a count per state;
`--fail-on-unwrapped` exits 1 when a container is failed or slipped. `-o image-config` writes
what it found in the format that `podinit inject --image-config` reads, for air-gapped use.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import aiohttp
import yaml
from kubernetes.aio import client as kube
from kubernetes.aio import config as kube_config

from webhook.config import Config
from webhook.core import (
    UNWRAPPED,
    ImageConfig,
    ImageResult,
    InjectSettings,
    State,
    observe,
    prepare,
)
from webhook.core.selection import WEBHOOK, Selection
from webhook.kube import api_client, close
from webhook.registry import ImageResolver
from webhook.registry_lookups import PullSecretReader, make_resolver, resolve_all

PAGE = 500
NO_WEBHOOK = (
    f"no MutatingWebhookConfiguration has a webhook named {WEBHOOK}: "
    "no pod counts as selected for injection"
)


class ScanError(Exception):
    """The cluster cannot be read; the message says what failed."""


@dataclass(frozen=True, slots=True)
class Row:
    namespace: str
    pod: str
    container: str  # "*": the whole pod
    state: str
    detail: str


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    found: dict[str, ImageResult] = field(default_factory=dict)
    webhook_installed: bool = True

    def summary(self) -> dict[str, int]:
        """Rows per state (every state, 0 included), and `slippedPods`: pods with a slipped
        row."""
        counts = Counter(r.state for r in self.rows)
        slipped = {(r.namespace, r.pod) for r in self.rows if r.state == State.SLIPPED}
        return {str(s): counts[s] for s in State} | {"slippedPods": len(slipped)}

    @property
    def unwrapped(self) -> list[Row]:
        return [r for r in self.rows if r.state in UNWRAPPED]


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """API errors as a ScanError naming what was being read."""
    try:
        yield
    except (kube.ApiException, aiohttp.ClientError, OSError, TimeoutError) as error:
        raise ScanError(f"cannot {what}: {_describe(error)}") from error


async def _json(call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """A `*_without_preload_content` call's body, parsed (no model round trip)."""
    response = await call(*args, **kwargs)
    return json.loads(await response.read())


async def list_pods(core: kube.CoreV1Api, namespace: str | None) -> AsyncIterator[dict[str, Any]]:
    """Raw pod dicts, page by page."""
    token: str | None = None
    while True:
        if namespace is None:
            page = await _json(
                core.list_pod_for_all_namespaces_without_preload_content,
                limit=PAGE,
                _continue=token,
            )
        else:
            page = await _json(
                core.list_namespaced_pod_without_preload_content,
                namespace,
                limit=PAGE,
                _continue=token,
            )
        for pod in page.get("items", []):
            yield pod
        token = page.get("metadata", {}).get("continue")
        if not token:
            return


async def namespace_labels(
    core: kube.CoreV1Api, namespace: str | None
) -> dict[str, dict[str, str]]:
    """Labels by namespace name: the one asked for, else all."""
    if namespace is not None:
        items = [await _json(core.read_namespace_without_preload_content, namespace)]
    else:
        items = (await _json(core.list_namespace_without_preload_content)).get("items", [])
    return {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in items}


async def selection(api: kube.ApiClient) -> Selection:
    admission = kube.AdmissionregistrationV1Api(api)
    listed = await _json(admission.list_mutating_webhook_configuration_without_preload_content)
    return Selection.of(listed.get("items", []))


async def scan(config: Config, settings: InjectSettings, *, namespace: str | None) -> Report:
    resolver: ImageResolver = make_resolver(config)  # a bad registryCaFile: before any reading
    try:
        api = await api_client(config, user_kubeconfig=True)
    except BaseException:
        await resolver.aclose()
        raise
    assert api is not None
    report = Report()
    try:
        core = kube.CoreV1Api(api)
        with _reading("list mutatingwebhookconfigurations"):
            sends = await selection(api)
        report.webhook_installed = bool(sends.webhooks)
        with _reading("read namespaces" if namespace is None else f"read namespace {namespace}"):
            labels = await namespace_labels(core, namespace)
        secrets = PullSecretReader(core)
        with _reading("list pods"):
            async for pod in list_pods(core, namespace):
                await _scan_pod(pod, sends, labels, secrets, resolver, config, settings, report)
    finally:
        await resolver.aclose()
        await close(api)
    return report


async def _scan_pod(
    pod: dict[str, Any],
    sends: Selection,
    labels: dict[str, dict[str, str]],
    secrets: PullSecretReader,
    resolver: ImageResolver,
    config: Config,
    settings: InjectSettings,
    report: Report,
) -> None:
    metadata = pod.get("metadata", {})
    ns, name = metadata.get("namespace", ""), metadata.get("name", "")
    plan = prepare(pod, settings)
    if plan.images:
        payloads = await secrets.for_pod(ns, pod) if config.pull_secret_lookups else []
        report.found |= await resolve_all(
            resolver,
            plan.images,
            architecture=plan.architecture,
            pull_secrets=payloads,
            budget=config.lookup_budget,
        )
    selected = sends.sends(labels.get(ns, {}), metadata.get("labels") or {})
    for seen in observe(plan, plan.decide(report.found), selected=selected):
        report.rows.append(Row(ns, name, seen.container, str(seen.state), seen.reason))


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


def write(report: Report, output: str, out: TextIO, err: TextIO) -> None:
    if not report.webhook_installed:
        err.write(f"podinit: {NO_WEBHOOK}\n")
    if output == "json":
        rows = [asdict(r) for r in report.rows]
        json.dump({"rows": rows, "summary": report.summary()}, out, indent=2)
        out.write("\n")
        return
    if output == "image-config":
        configs = {
            image: {"entrypoint": list(result.entrypoint), "cmd": list(result.cmd)}
            for image, result in sorted(report.found.items())
            if isinstance(result, ImageConfig)
        }
        yaml.safe_dump(configs, out, sort_keys=False)
        return
    table = [("NAMESPACE", "POD", "CONTAINER", "STATE", "DETAIL")]
    table += [(r.namespace, r.pod, r.container, r.state, r.detail) for r in report.rows]
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    for *cells, detail in table:
        line = "  ".join(f"{cell:{width}}" for cell, width in zip(cells, widths, strict=True))
        out.write(f"{line}  {detail}".rstrip() + "\n")
    out.write(f"\n{_summary_line(report)}\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary_line(report: Report) -> str:
    counts = report.summary()
    slipped_pods = counts.pop("slippedPods")
    parts = [f"{n} {state}" for state, n in counts.items()]
    return f"{', '.join(parts)}; pods slipped through: {slipped_pods}"


def run(
    config: Config,
    settings: InjectSettings,
    *,
    namespace: str | None,
    output: str,
    fail_on_unwrapped: bool = False,
) -> int:
    """0, or 1 with `fail_on_unwrapped` when a container is failed or slipped; raises ScanError
    when the cluster cannot be read."""
    try:
        report = asyncio.run(scan(config, settings, namespace=namespace))
    except kube_config.ConfigException as error:
        raise ScanError(f"cannot load a kubeconfig: {error}") from error
    except yaml.YAMLError as error:  # only kubeconfigs are read as YAML here
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ScanError(
            f"cannot load a kubeconfig: {_kubeconfig_source(config)}{where}: not valid YAML"
        ) from error
    if fail_on_unwrapped and not report.webhook_installed:
        raise ScanError(f"{NO_WEBHOOK}; cannot tell which pods slipped through")
    write(report, output, sys.stdout, sys.stderr)
    if fail_on_unwrapped and (unwrapped := report.unwrapped):
        counts = report.summary()
        sys.stderr.write(
            f"podinit: {_count(len(unwrapped), 'container')} not wrapped "
            f"({counts[State.FAILED]} failed, {counts[State.SLIPPED]} slipped in "
            f"{_count(counts['slippedPods'], 'pod')})\n"
        )
        return 1
    return 0
