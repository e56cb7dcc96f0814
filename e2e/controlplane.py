"""A real Kubernetes control plane for the end-to-end tests, on loopback by default.

etcd, kube-apiserver and kube-controller-manager are the real programs (built by
``make e2e-tools``, see e2e/tools.sh; their flags are in e2e.components); there is no
kubelet, so pods stay Pending, unless e2e.node adds one (and a kube-scheduler,
``scheduler``). A release of the version matrix (``find_tools("v1.34.4")``) runs etcd and
its kube-apiserver only (the oldest cluster's, its controller manager too):
``create_namespace`` then makes the ``default`` ServiceAccount the serviceaccount controller
would.

Usage (the pytest session fixture in tests/e2e/conftest.py does this)::

    tools = find_tools()              # e2e.tools; raises ToolsMissing naming what to install
    with ControlPlane.running(tools) as cp:
        cp.kubectl("create", "namespace", "demo")
        cp.kubeconfig                 # admin kubeconfig (system:masters client cert)
        cp.apiserver_url              # https://127.0.0.1:<port>

Everything listens on 127.0.0.1 on random ports; each process runs in its own process
group and is killed with it on exit (and by the kernel if the test process dies), see
e2e.processes. Certificates come from e2e.pki, the audit log is read by e2e.audit.
Logs go to ``cp.logdir``, which is kept and printed when ``stop(keep_logs=True)``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e import audit
from e2e.cluster_client import ClusterClient
from e2e.components import (
    LOOPBACK,
    ClusterKeys,
    apiserver_argv,
    controller_manager_argv,
    etcd_argv,
    scheduler_argv,
    write_admission_configuration,
)
from e2e.pki import CertAuthority
from e2e.processes import Process, StartupError, free_port, port_taken, spawn, wait_until
from e2e.tools import Tools, kubectl_within_skew
from e2e.webhookconfig import http_ok


@dataclass(kw_only=True)
class ControlPlane(ClusterClient):
    """A running etcd + kube-apiserver + kube-controller-manager.

    Attributes tests use: ``kubeconfig`` (admin), ``apiserver_url``, ``ca`` (the
    cluster CA: ``ca.cert`` verifies the apiserver; ``ca.issue_*`` makes more certs),
    ``webhook_client_ca`` (what the apiserver's webhook client certificate comes from),
    ``workdir`` (scratch space removed on stop), ``logdir`` (process logs and
    ``audit.log``), ``tools``.
    """

    etcd_url: str
    procs: list[Process] = field(default_factory=list)  # everything spawned; `core`: etcd,
    # the apiserver, the controller manager and the scheduler
    address: str = LOOPBACK
    feature_gates: dict[str, bool] = field(default_factory=dict)  # the apiserver's
    scheduler: Path | None = None  # kube-scheduler, run beside the controller manager
    # Issues the certificate the apiserver presents to every admission webhook: a webhook
    # that trusts it (clientCaFile) answers only the apiserver.
    webhook_client_ca: CertAuthority | None = None

    # ---- lifecycle

    @classmethod
    @contextlib.contextmanager
    def running(cls, tools: Tools, *, keep_logs_on_error: bool = True) -> Iterator[ControlPlane]:
        """Context manager: start, yield, stop. Logs are kept if the body raises."""
        cp = cls.start(tools)
        ok = False
        try:
            yield cp
            ok = True
        finally:
            cp.stop(keep_logs=keep_logs_on_error and not ok)

    @classmethod
    def start(
        cls,
        tools: Tools,
        *,
        startup_timeout: float = 180.0,
        address: str = LOOPBACK,
        feature_gates: Mapping[str, bool] | None = None,
        scheduler: Path | None = None,
    ) -> ControlPlane:
        """Start etcd, kube-apiserver and kube-controller-manager; raises StartupError
        (with log tails; the logs are kept) if one exits or is not ready in time.

        Ports are picked free, then bound by the process: another process can take one
        in between, so a start that fails on a port in use is retried with new ports.

        ``address``: where the apiserver listens and what it advertises; a node's pods
        reach it there (through the ``kubernetes`` Service). Not loopback, the apiserver
        can reach kubelets (client certificate, InternalIP). ``scheduler``: a
        kube-scheduler binary to run too (a node's, of the node's release).

        ``feature_gates``: the apiserver's ``--feature-gates`` (it drops the fields of a
        gate that is off, e.g. ``lifecycle.stopSignal`` without ContainerStopSignals)."""
        gates = dict(feature_gates or {})
        for attempt in range(3):
            try:
                return cls._start_once(
                    tools,
                    startup_timeout,
                    address=address,
                    feature_gates=gates,
                    scheduler=scheduler,
                    last_attempt=attempt == 2,
                )
            except StartupError as e:
                if not port_taken(e) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(
        cls,
        tools: Tools,
        startup_timeout: float,
        *,
        address: str,
        feature_gates: dict[str, bool],
        scheduler: Path | None,
        last_attempt: bool,
    ) -> ControlPlane:
        workdir = Path(tempfile.mkdtemp(prefix="podinit-e2e-"))
        logdir = Path(tempfile.mkdtemp(prefix="podinit-e2e-logs-"))
        pki = workdir / "pki"
        ca = CertAuthority(pki, "cluster")
        cp = cls(
            tools=tools,
            workdir=workdir,
            logdir=logdir,
            ca=ca,
            apiserver_url="",
            kubeconfig=workdir / "admin.kubeconfig",
            etcd_url="",
            address=address,
            feature_gates=feature_gates,
            scheduler=scheduler,
        )
        # also stop if the test process ends without calling stop (the processes would
        # die with it anyway, through PR_SET_PDEATHSIG; this removes the temp dirs)
        atexit.register(cp._stop_at_exit)
        try:
            cp._start_all(startup_timeout)
        except BaseException as e:
            cp.stop(keep_logs=last_attempt or not port_taken(e))
            raise
        return cp

    def _stop_at_exit(self) -> None:
        if self.workdir.exists():
            self.stop(keep_logs=True)

    def stop(self, *, keep_logs: bool = False) -> None:
        atexit.unregister(self._stop_at_exit)
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()
        self.core.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if keep_logs:
            print(f"\npodinit e2e: control-plane logs kept in {self.logdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"ControlPlane({self.apiserver_url or 'starting'}, logs={self.logdir})"

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop(keep_logs=exc_type is not None)

    def spawn(
        self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None
    ) -> Process:
        """Start a process (e.g. ``podinit serve``) managed like the control plane: its
        output goes to ``logdir/<name>.log`` (shown for failing tests), it runs in its own
        process group and is stopped with the control plane. ``Process.stop()`` stops it
        earlier. ``env`` defaults to ``self.env()`` (KUBECONFIG set)."""
        proc = spawn(
            name,
            argv,
            self.logdir / f"{name}.log",
            env=self.env() if env is None else env,
            cwd=self.workdir,
        )
        self.procs.append(proc)
        return proc

    def _core_spawn(self, name: str, argv: list[str]) -> Process:
        proc = self.spawn(name, argv)
        self.core.append(proc)
        return proc

    def _start_all(self, timeout: float) -> None:
        keys = ClusterKeys.issue(self.ca, address=self.address)
        self._admin = keys.admin
        etcd = self._start_etcd()
        apiserver = self._start_apiserver(keys, timeout=timeout, watched=[etcd])
        self._check_kubectl_skew()
        if self.tools.kube_controller_manager is None:
            # a matrix release: no controllers; what the tests need of them is made here
            self.create_namespace("default")
            return
        kcm = self._start_controller_manager(
            self.tools.kube_controller_manager, keys, watched=[etcd, apiserver]
        )
        if self.scheduler is not None:
            self._start_scheduler(self.scheduler)
        # The serviceaccount controller creates `default` in every namespace; pods
        # cannot be admitted before it exists, so this means controllers are running.
        wait_until(
            "the default ServiceAccount",
            lambda: self._api_get_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            60,
            [etcd, apiserver, kcm],
        )

    def server_version(self) -> str:
        """The apiserver's gitVersion (``/version``), e.g. ``v1.34.4``."""
        return str(self.api("GET", "/version")["gitVersion"])

    def _check_kubectl_skew(self) -> None:
        """Every test's kubectl is the built one of tools.kube_version: refuse to start if
        it is outside kubectl's supported skew of this apiserver (one minor either way)."""
        client = json.loads(self.kubectl("version", "--client", "-o", "json").stdout)
        kubectl, server = client["clientVersion"]["gitVersion"], self.server_version()
        if not kubectl_within_skew(kubectl, server):
            raise StartupError(f"kubectl {kubectl} is outside the supported skew of {server}")

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A namespace with its ``default`` ServiceAccount: pods are refused until it exists.
        With a controller manager its serviceaccount controller creates it (waited for);
        without one (a matrix release) it is created here, as that controller would."""
        meta: dict[str, Any] = {"name": name, "labels": labels or {}}
        if name != "default":
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
        if self.tools.kube_controller_manager is not None:
            self.wait_for(f"ServiceAccount {name}/default", lambda: self._api_get_ok(path))
        elif not self._api_get_ok(path):
            sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
            self.api("POST", f"/api/v1/namespaces/{name}/serviceaccounts", sa)

    def _start_etcd(self) -> Process:
        etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://{LOOPBACK}:{etcd_port}"
        etcd = self._core_spawn(
            "etcd",
            etcd_argv(
                self.tools.etcd,
                data_dir=self.workdir / "etcd",
                client_url=self.etcd_url,
                peer_url=f"http://{LOOPBACK}:{peer_port}",
            ),
        )
        wait_until("etcd /health", lambda: http_ok(f"{self.etcd_url}/health"), 30, [etcd])
        return etcd

    def _start_apiserver(
        self, keys: ClusterKeys, *, timeout: float, watched: list[Process]
    ) -> Process:
        """kube-apiserver with its audit log of pod creations, and the admin kubeconfig;
        ready when /readyz answers (``watched``: the processes whose death fails the wait)."""
        audit_policy = self.workdir / "audit-policy.yaml"
        audit_policy.write_text(audit.POLICY)
        port = free_port()
        self.apiserver_url = f"https://{self.address}:{port}"
        argv = apiserver_argv(
            self.tools.kube_apiserver,
            keys=keys,
            client_ca=self.ca.cert,
            etcd_url=self.etcd_url,
            address=self.address,
            port=port,
            audit_policy=audit_policy,
            audit_log=self.logdir / "audit.log",
            admission_configuration=write_admission_configuration(
                self.workdir, keys.webhook_client
            ),
            feature_gates=self.feature_gates,
        )
        self.webhook_client_ca = keys.webhook_client_ca
        apiserver = self._core_spawn("kube-apiserver", argv)
        self.write_kubeconfig(self.kubeconfig, keys.admin, "admin")
        wait_until(
            "kube-apiserver /readyz",
            lambda: self._api_get_ok("/readyz"),
            timeout,
            [*watched, apiserver],
        )
        return apiserver

    def _start_controller_manager(
        self, binary: Path, keys: ClusterKeys, *, watched: list[Process]
    ) -> Process:
        kubeconfig = self.workdir / "kcm.kubeconfig"
        self.write_kubeconfig(kubeconfig, keys.controller_manager, "kube-controller-manager")
        port = free_port()
        argv = controller_manager_argv(
            binary,
            kubeconfig=kubeconfig,
            port=port,
            cert_dir=self.workdir / "kcm-certs",
            ca=self.ca,
            sa_key=keys.sa_key,
        )
        kcm = self._core_spawn("kube-controller-manager", argv)
        wait_until(
            "kube-controller-manager /healthz",
            lambda: http_ok(f"https://{LOOPBACK}:{port}/healthz", verify=False),
            60,
            [*watched, kcm],
        )
        return kcm

    def _start_scheduler(self, binary: Path) -> None:
        kubeconfig = self.workdir / "scheduler.kubeconfig"
        client = self.ca.issue_client("scheduler", "system:kube-scheduler")
        self.write_kubeconfig(kubeconfig, client, "kube-scheduler")
        port = free_port()
        argv = scheduler_argv(binary, kubeconfig=kubeconfig, port=port)
        scheduler = self._core_spawn("kube-scheduler", argv)
        wait_until(
            "kube-scheduler /healthz",
            lambda: http_ok(f"https://{LOOPBACK}:{port}/healthz", verify=False),
            60,
            [*self.core, scheduler],
        )

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.tail(lines)}" for p in self.procs)
