"""`podinit serve`: wire config, Kubernetes client, resolver, TLS and uvicorn together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from kubernetes.aio import client as kube

from webhook.config import Config, ConfigError, read_setting_file
from webhook.core import InjectSettings
from webhook.kube import api_client, close
from webhook.registry import ImageResolver
from webhook.registry_lookups import PullSecretReader, make_resolver
from webhook.server import logs
from webhook.server.admission import Admitter
from webhook.server.app import create_app, operational_app
from webhook.server.certs import CertificateManager
from webhook.server.cluster_networks import ClusterNetworks
from webhook.server.connections import ConnectionLimits, bounded_tls_handshakes, guarded_protocol
from webhook.server.events import EventRecorder
from webhook.server.metrics import Metrics
from webhook.server.namespaces import NamespaceGate
from webhook.server.nodes import NodeCapabilities
from webhook.server.owners import KubeObjects, OwnerCheck
from webhook.server.tls import CertReloader
from webhook.server.watching_setup import watching

log = logging.getLogger("podinit.serve")
# Writable in the webhook pod (an emptyDir on /tmp; the root filesystem is read-only).
SELF_MANAGED_DIR = Path("/tmp/podinit-certs")
STOP_SECONDS = 5.0  # for background tasks to finish once cancelled


@dataclass
class ClusterReads:
    """What the server reads of the cluster beside admissions, each once before serving (the
    first admissions need no read) and again by a background task of serve."""

    nodes: NodeCapabilities | None = None  # auto mode: can the nodes mount image volumes?
    networks: ClusterNetworks | None = None  # ranges registry lookups never connect into
    namespaces: NamespaceGate | None = None  # which namespaces the webhook selects


@dataclass
class Parts:
    admitter: Admitter
    resolver: ImageResolver
    metrics: Metrics
    api: kube.ApiClient | None
    events: EventRecorder | None = None  # its writer runs as a background task of serve
    reads: ClusterReads = field(default_factory=ClusterReads)


async def _kubernetes_version(api: kube.ApiClient | None) -> tuple[int, int] | None:
    if api is None:
        return None
    try:
        info = await kube.VersionApi(api).get_code()
        return int(info.major), int("".join(ch for ch in info.minor if ch.isdigit()))
    except Exception as error:  # an unknown version only means: no imageVolume in auto mode
        log.warning("cannot read the Kubernetes version: %s", type(error).__name__)
        return None


async def _cluster_reads(
    config: Config, api: kube.ApiClient | None, resolver: ImageResolver
) -> ClusterReads:
    reads = ClusterReads()
    if api is None:
        return reads
    if config.injection_mode == "auto":
        reads.nodes = NodeCapabilities(kube.CoreV1Api(api))
        await reads.nodes.read()
    if config.registry_deny_cluster_networks:
        reads.networks = ClusterNetworks(
            kube.NetworkingV1Api(api),
            kube.CoreV1Api(api),
            on_change=resolver.deny_cluster_networks,
            listed_nodes=(lambda: nodes.nodes) if (nodes := reads.nodes) is not None else None,
        )
        await reads.networks.read()
    reads.namespaces = NamespaceGate(
        admission=kube.AdmissionregistrationV1Api(api),
        core=kube.CoreV1Api(api),
        configuration=config.webhook_configuration,
    )
    await reads.namespaces.read()
    return reads


def _event_recorder(
    config: Config, api: kube.ApiClient | None, metrics: Metrics
) -> EventRecorder | None:
    if api is None or not config.events:
        return None
    return EventRecorder(
        kube.EventsV1Api(api),
        metrics,
        queue_size=config.event_queue_size,
        owners=OwnerCheck(KubeObjects(api)),
    )


@contextlib.asynccontextmanager
async def build(config: Config) -> AsyncIterator[Parts]:
    # What the config files hold is checked before anything connects: a bad file is one error.
    docker_config = config.docker_config_file
    extra = read_setting_file(docker_config, "docker_config_file") if docker_config else None
    resolver = make_resolver(config)
    api: kube.ApiClient | None = None
    reader: PullSecretReader | None = None
    try:
        api = await api_client(config, user_kubeconfig=False)
        version = await _kubernetes_version(api)
        reads = await _cluster_reads(config, api, resolver)
        nodes = reads.nodes

        def settings() -> InjectSettings:  # the nodes' answer may change while serving
            mount = nodes.mount if nodes is not None else None
            return config.inject_settings(kubernetes_version=version, nodes_mount=mount)

        metrics = Metrics(resolver.stats)
        if api is not None and config.pull_secret_lookups:
            reader = PullSecretReader(kube.CoreV1Api(api))
        events = _event_recorder(config, api, metrics)
        admitter = Admitter(
            settings=settings(),
            metrics=metrics,
            resolver=resolver,
            pull_secrets=reader,
            extra_docker_config=extra,
            budget=config.lookup_budget,
            events=events,
            namespaces=reads.namespaces,
        )
        if nodes is not None:  # a node that joins later changes the mode of new pods
            nodes.on_change = lambda _: setattr(admitter, "settings", settings())
        yield Parts(admitter, resolver, metrics, api, events, reads)
    finally:
        if reader is not None:
            reader.close()
        await resolver.aclose()
        if api is not None:
            await close(api)


def uvicorn_config(
    app: Any,
    config: Config,
    cert_file: Path,
    key_file: Path,
    metrics: Metrics | None = None,
    *,
    port: int | None = None,
    client_ca: Path | None = None,
) -> uvicorn.Config:
    """The server of `port` (default: config.port); with `client_ca`, clients must present a
    certificate it issued."""
    limits = ConnectionLimits(config.request_timeout, config.max_connections)
    verify: dict[str, Any] = {}
    if client_ca is not None:
        verify = {"ssl_ca_certs": str(client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return uvicorn.Config(
        app,
        # Slow or silent clients are cut off and connections capped (webhook/server/connections.py).
        http=guarded_protocol(limits, metrics or Metrics()),
        host=config.host,
        port=config.port if port is None else port,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        **verify,
        log_config=None,
        access_log=False,
        # The apiserver connects directly: no proxy whose X-Forwarded-* headers to trust.
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        # Longer than the apiserver's idle-connection timeout (90 s), so the server never
        # closes a kept-alive connection just as the apiserver sends on it.
        timeout_keep_alive=120,
    )


def certificate_files(config: Config) -> tuple[Path, Path]:
    if config.certificates == "selfManaged":
        return (
            config.tls_cert_file or SELF_MANAGED_DIR / "tls.crt",
            config.tls_key_file or SELF_MANAGED_DIR / "tls.key",
        )
    if config.tls_cert_file is None or config.tls_key_file is None:
        raise ConfigError("tlsCertFile and tlsKeyFile are required with certificates: files")
    read_setting_file(config.tls_cert_file, "tls_cert_file")
    read_setting_file(config.tls_key_file, "tls_key_file")
    _check_pair(config.tls_cert_file, config.tls_key_file)
    return config.tls_cert_file, config.tls_key_file


def _check_pair(cert: Path, key: Path) -> None:
    """The pair loaded as uvicorn will load it, so that a bad one is a ConfigError naming the
    setting at fault instead of a traceback from inside uvicorn."""
    try:
        # An empty password: an encrypted key fails here instead of prompting on a terminal.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=b"")
        return
    except ssl.SSLError as error:
        failure = error
    if failure.reason == "KEY_VALUES_MISMATCH":
        raise ConfigError(
            f"tlsKeyFile: {key} is not the key of the certificate in tlsCertFile {cert}"
        ) from failure
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=cert)
    except ssl.SSLError:
        raise ConfigError(f"tlsCertFile: {cert}: no valid PEM certificate") from failure
    raise ConfigError(f"tlsKeyFile: {key}: no valid unencrypted PEM private key") from failure


async def _self_managed(
    config: Config, api: kube.ApiClient | None, files: tuple[Path, Path]
) -> CertificateManager:
    if api is None:
        raise ConfigError(
            "certificates: selfManaged needs Kubernetes API access (in cluster or kubeconfig)"
        )
    manager = CertificateManager(
        core=kube.CoreV1Api(api),
        admission=kube.AdmissionregistrationV1Api(api),
        namespace=config.namespace,
        service=config.service_name,
        secret=config.certificate_secret,
        webhook_configuration=config.webhook_configuration,
        cert_file=files[0],
        key_file=files[1],
        extra_names=tuple(config.certificate_hosts),
    )
    await manager.ensure()
    return manager


async def serve(config: Config) -> None:
    logs.setup(config.log_level)
    files = certificate_files(config)
    async with build(config) as parts:
        reloaders: list[CertReloader] = []  # the admission server's, once it is built

        def ready() -> bool:
            return bool(reloaders) and reloaders[0].ready

        background = await _start_background(config, parts, files, ready)
        server_config, reloader = _admission_server(config, parts, files, ready)
        reloaders.append(reloader)
        background.append(asyncio.create_task(reloader.watch(config.tls_reload_seconds)))
        servers = [uvicorn.Server(server_config)]
        if config.metrics_port is not None:
            servers.append(_operational_server(config, files, parts.metrics, ready, background))
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's scans, which otherwise run every few admissions.
        gc.collect()
        gc.freeze()
        log.info(
            "serving",
            extra={"host": config.host, "port": config.port, "metrics_port": config.metrics_port},
        )
        try:
            with (
                bounded_tls_handshakes(asyncio.get_running_loop(), config.request_timeout),
                _stop_signals_return(),
            ):
                await _serve_all(servers)
        finally:
            for task in background:
                task.cancel()
            # Before the API client closes: a leader hands its Lease back on the way out.
            await asyncio.wait(background, timeout=STOP_SECONDS)


async def _start_background(
    config: Config, parts: Parts, files: tuple[Path, Path], ready: Callable[[], bool]
) -> list[asyncio.Task[None]]:
    """The work beside admissions: certificates, Events, the namespace check, nodes, and the
    pod watch (on the leading replica)."""
    background: list[asyncio.Task[None]] = []
    if config.certificates == "selfManaged":
        manager = await _self_managed(config, parts.api, files)
        background.append(asyncio.create_task(manager.run(config.certificate_check_seconds)))
    reads = parts.reads
    for part in (parts.events, reads.namespaces, reads.nodes, reads.networks):
        if part is not None:
            background.append(asyncio.create_task(part.run()))
    if config.pod_watch:
        if parts.api is None or parts.reads.namespaces is None:
            raise ConfigError("podWatch needs Kubernetes API access (in cluster or kubeconfig)")
        leader = watching(
            config, api=parts.api, settings=lambda: parts.admitter.settings,
            gate=parts.reads.namespaces,
            ready=ready,
        )  # fmt: skip
        parts.metrics.watching.watching = leader
        background.append(asyncio.create_task(leader.run()))
    return background


def _admission_server(
    config: Config, parts: Parts, files: tuple[Path, Path], ready: Callable[[], bool]
) -> tuple[uvicorn.Config, CertReloader]:
    """/mutate's server and the reloader that gives each new connection the current pair."""
    app = create_app(admitter=parts.admitter, metrics=parts.metrics, ready=ready)
    client_ca = config.client_ca_file
    ca = read_setting_file(client_ca, "client_ca_file") if client_ca else None
    server_config = uvicorn_config(app, config, *files, metrics=parts.metrics, client_ca=client_ca)
    server_config.load()
    assert server_config.ssl is not None
    # uvicorn's context stays the listening one; the reloader switches each new connection
    # to a context of its own, built afresh for every new pair (webhook/server/tls.py).
    reloader = CertReloader(
        server_config.ssl,
        *files,
        on_load=parts.metrics.set_certificate_expiry,
        on_result=parts.metrics.count_certificate_reload,
        client_ca=ca,
    )
    reloader.check()
    return server_config, reloader


def _operational_server(
    config: Config,
    files: tuple[Path, Path],
    metrics: Metrics,
    ready: Any,
    background: list[asyncio.Task[None]],
) -> uvicorn.Server:
    """/healthz, /readyz and /metrics on metricsPort: the same certificate, no client
    certificate asked for (kubelet probes and Prometheus have none), no /mutate."""
    app = operational_app(metrics=metrics, ready=ready)
    ops_config = uvicorn_config(app, config, *files, metrics=metrics, port=config.metrics_port)
    ops_config.load()
    assert ops_config.ssl is not None
    reloader = CertReloader(ops_config.ssl, *files)  # the main one reports and counts
    reloader.check()
    background.append(asyncio.create_task(reloader.watch(config.tls_reload_seconds)))
    return uvicorn.Server(ops_config)


@contextlib.contextmanager
def _stop_signals_return() -> Iterator[None]:
    """SIGTERM and SIGINT end serving, and `serve` then returns (exit 0) once its background
    work has finished, instead of dying at once: uvicorn hands a signal it caught on to the
    handler it found (see _serve_all), which would otherwise be the default one. A leader
    hands its Lease back on the way out this way."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve_all(servers: list[uvicorn.Server]) -> None:
    """Every server until one ends; then the others end too. A SIGTERM reaches them all: each
    uvicorn server passes the signals it caught on to the handler it replaced."""
    tasks = [asyncio.ensure_future(server.serve()) for server in servers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()
