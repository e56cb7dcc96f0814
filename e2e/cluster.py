"""A real Kubernetes control plane on loopback for the end-to-end tests.

etcd, kube-apiserver and kube-controller-manager are the real programs (built by
``make e2e-tools``, see e2e/tools.sh); there is no kubelet, so pods stay Pending.

Usage (the pytest session fixture in tests/e2e/conftest.py does this)::

    tools = find_tools()              # raises ToolsMissing naming what to install
    with ControlPlane.start(tools) as cp:
        cp.kubectl("create", "namespace", "demo")
        cp.kubeconfig                 # admin kubeconfig (system:masters client cert)
        cp.apiserver_url              # https://127.0.0.1:<port>

Everything listens on 127.0.0.1 on random ports; each process runs in its own process
group and is killed with it on exit (and by the kernel if the test process dies).
Logs go to ``cp.logdir``, which is kept and printed when ``stop(keep_logs=True)``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

E2E_DIR = Path(__file__).resolve().parent
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


# --------------------------------------------------------------------------- tools


class ToolsMissing(Exception):
    """The control-plane binaries are not there; the message says how to get them."""


@dataclass(frozen=True)
class Tools:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    helm: Path
    kubectl: Path
    versions: dict[str, str]


def read_versions(path: Path = E2E_DIR / "versions.env") -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def tools_cache() -> Path:
    env = os.environ.get("PODINIT_TOOLS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "podinit-tools"


def find_tools() -> Tools:
    """Locate the binaries built by ``make e2e-tools`` (env vars override each path)."""
    versions = read_versions()
    cache = tools_cache()

    def cached(tool: str, version_key: str) -> Path:
        return cache / f"{tool}-{versions[version_key]}" / tool

    if versions.get("ETCD_VERSION", "debian") == "debian":
        etcd = (Path("/usr/bin/etcd"), "Debian `etcd-server` (apt-get install etcd-server)")
    else:
        etcd = (cached("etcd", "ETCD_VERSION"), "`make e2e-tools`")
    kubectl_found = shutil.which("kubectl")
    wanted = {
        "ETCD": etcd,
        "KUBE_APISERVER": (cached("kube-apiserver", "KUBE_VERSION"), "`make e2e-tools`"),
        "KUBE_CONTROLLER_MANAGER": (
            cached("kube-controller-manager", "KUBE_VERSION"),
            "`make e2e-tools`",
        ),
        "HELM": (cached("helm", "HELM_VERSION"), "`make e2e-tools`"),
        "KUBECTL": (Path(kubectl_found or "kubectl"), "kubectl on PATH"),
    }
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for name, (default, remedy) in wanted.items():
        path = Path(os.environ.get(name) or default)
        if not (path.is_file() and os.access(path, os.X_OK)):
            missing.append(f"{name.lower().replace('_', '-')} ({path}): {remedy}")
        paths[name] = path
    if missing:
        raise ToolsMissing("end-to-end tools missing: " + "; ".join(missing))
    return Tools(
        etcd=paths["ETCD"],
        kube_apiserver=paths["KUBE_APISERVER"],
        kube_controller_manager=paths["KUBE_CONTROLLER_MANAGER"],
        helm=paths["HELM"],
        kubectl=paths["KUBECTL"],
        versions=versions,
    )


# --------------------------------------------------------------------------- certificates


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class IssuedCert:
    cert: Path
    key: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key.read_bytes()


class CertAuthority:
    """A throwaway CA writing PEM files into ``directory``.

    Used for the apiserver (serving and client certs) and reusable by the tests for a
    webhook's serving cert: ``CertAuthority(dir, "webhook").issue_server("webhook",
    ["127.0.0.1", "localhost"])`` and ``ca.ca_bundle`` for the webhook's caBundle.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-ca")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = directory / f"{name}-ca.crt"
        self.key = directory / f"{name}-ca.key"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(_pem_key(self._key))
        self.key.chmod(0o600)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def ca_bundle(self) -> str:
        """base64 of the CA's PEM: the value of a webhook clientConfig.caBundle."""
        return base64.b64encode(self.cert_pem).decode()

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        hosts: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> IssuedCert:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        # Kubernetes usernames (the CN) may exceed X.509's 64-character upper bound,
        # which the apiserver does not enforce; cryptography does unless told not to.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False))
        now = dt.datetime.now(dt.UTC)
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if hosts:
            sans: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    sans.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = IssuedCert(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issued.key.write_bytes(_pem_key(key))
        issued.key.chmod(0o600)
        return issued

    def issue_server(
        self, name: str, hosts: Sequence[str] = ("127.0.0.1", "localhost")
    ) -> IssuedCert:
        return self.issue(name, hosts[0], hosts=hosts, server=True)

    def issue_client(self, name: str, user: str, groups: Sequence[str] = ()) -> IssuedCert:
        return self.issue(name, user, organizations=groups, client=True)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PR_SET_PDEATHSIG = 1
_SETPRIV = shutil.which("setpriv")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _with_parent_death_signal(
    argv: list[str],
) -> tuple[list[str], Callable[[], None] | None]:
    """SIGKILL the child when the thread that spawned it dies: util-linux ``setpriv``
    (no Python code between fork and exec, safe with threads), else a preexec_fn."""
    if _SETPRIV:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return argv, _die_with_parent


@dataclass
class Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it if still there after ``timeout``."""
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure nothing else in its group survives it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(1)


class StartupError(RuntimeError):
    pass


def _port_taken(e: BaseException) -> bool:
    return isinstance(e, StartupError) and "address already in use" in str(e)


def _wait(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    procs: Sequence[Process] = (),
    interval: float = 0.25,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if not p.alive():
                raise StartupError(
                    f"{p.name} exited with {p.popen.returncode} while waiting for {what}; "
                    f"log {p.log}:\n{p.tail()}"
                )
        if check():
            return
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {p.name} ({p.log}):\n{p.tail()}" for p in procs)
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}{tails}")
        time.sleep(interval)


# --------------------------------------------------------------------------- control plane

_AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # pod creations with their admission annotations (which webhook mutated what)
  - level: Request
    resources: [{group: "", resources: ["pods"]}]
    verbs: ["create"]
  - level: Metadata
    resources:
      - {group: "admissionregistration.k8s.io"}
      - {group: "apps"}
    verbs: ["create", "update", "patch", "delete"]
  - level: None
"""


_MUTATION_ANNOTATION = "mutation.webhook.admission.k8s.io"
_PATCH_ANNOTATION = "patch.webhook.admission.k8s.io"


def _round_index(entry: dict[str, Any]) -> tuple[int, int]:
    return (entry["round"], entry["index"])


@dataclass(frozen=True)
class PodAdmission:
    """One pod creation as the apiserver's audit log recorded it.

    ``mutations``: ``{"round", "index", "configuration", "webhook", "mutated"}`` per
    mutating webhook called; ``patches``: ``{"round", "index", "configuration",
    "webhook", "patch", "patchType"}`` per webhook that returned a patch.
    """

    namespace: str
    user: str
    dry_run: bool
    status: int
    mutations: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    annotations: dict[str, str]

    def called(self, configuration: str) -> bool:
        return any(m["configuration"] == configuration for m in self.mutations)

    def mutated_by(self, configuration: str) -> bool:
        return any(m["configuration"] == configuration and m["mutated"] for m in self.mutations)


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver + kube-controller-manager.

    Attributes tests use: ``kubeconfig`` (admin), ``apiserver_url``, ``ca`` (the
    cluster CA: ``ca.cert`` verifies the apiserver; ``ca.issue_*`` makes more certs),
    ``workdir`` (scratch space removed on stop), ``logdir`` (process logs and
    ``audit.log``), ``tools``.
    """

    tools: Tools
    workdir: Path
    logdir: Path
    ca: CertAuthority
    apiserver_url: str
    kubeconfig: Path
    etcd_url: str
    procs: list[Process] = field(default_factory=list)  # everything spawned
    core: list[Process] = field(default_factory=list)  # etcd, apiserver, controller-manager
    _admin: IssuedCert | None = None

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
    def start(cls, tools: Tools, *, startup_timeout: float = 180.0) -> ControlPlane:
        """Start etcd, kube-apiserver and kube-controller-manager; raises StartupError
        (with log tails; the logs are kept) if one exits or is not ready in time.

        Ports are picked free, then bound by the process: another process can take one
        in between, so a start that fails on a port in use is retried with new ports."""
        for attempt in range(3):
            try:
                return cls._start_once(tools, startup_timeout, last_attempt=attempt == 2)
            except StartupError as e:
                if not _port_taken(e) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(
        cls, tools: Tools, startup_timeout: float, *, last_attempt: bool
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
        )
        # also stop if the test process ends without calling stop (the processes would
        # die with it anyway, through PR_SET_PDEATHSIG; this removes the temp dirs)
        atexit.register(cp._stop_at_exit)
        try:
            cp._start_all(startup_timeout)
        except BaseException as e:
            cp.stop(keep_logs=last_attempt or not _port_taken(e))
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
        argv = [str(a) for a in argv]
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"# {' '.join(argv)}\n".encode())
            out.flush()
            cmd, preexec = _with_parent_death_signal(argv)
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env() if env is None else env,
                start_new_session=True,  # own process group, killed as a whole
                preexec_fn=preexec,
            )
        proc = Process(name, argv, log, popen)
        self.procs.append(proc)
        return proc

    def _core_spawn(self, name: str, argv: list[str]) -> Process:
        proc = self.spawn(name, argv)
        self.core.append(proc)
        return proc

    def _start_all(self, timeout: float) -> None:
        pki = self.ca.directory
        t = self.tools

        # -- etcd
        etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        etcd = self._core_spawn(
            "etcd",
            [
                str(t.etcd),
                "--name=e2e",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=e2e={peer}",
                "--initial-cluster-state=new",
                "--log-level=warn",
            ],
        )
        _wait("etcd /health", lambda: http_ok(f"{self.etcd_url}/health"), 30, [etcd])

        # -- certificates and keys
        serving = self.ca.issue_server(
            "apiserver",
            [
                "127.0.0.1",
                "localhost",
                KUBERNETES_SERVICE_IP,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self._admin = self.ca.issue_client("admin", "podinit-e2e-admin", ["system:masters"])
        kcm_client = self.ca.issue_client("kcm", "system:kube-controller-manager")
        # front proxy (request-header authentication, for aggregated APIs): not used by
        # the tests, configured so delegated authentication is complete and quiet
        front_proxy_ca = CertAuthority(pki, "front-proxy")
        front_proxy_client = front_proxy_ca.issue_client("front-proxy-client", "front-proxy-client")
        sa_key = ec.generate_private_key(ec.SECP256R1())
        sa_key_file, sa_pub_file = pki / "sa.key", pki / "sa.pub"
        sa_key_file.write_bytes(_pem_key(sa_key))
        sa_pub_file.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        audit_policy = self.workdir / "audit-policy.yaml"
        audit_policy.write_text(_AUDIT_POLICY)

        # -- kube-apiserver
        port = free_port()
        self.apiserver_url = f"https://127.0.0.1:{port}"
        apiserver = self._core_spawn(
            "kube-apiserver",
            [
                str(t.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                # endpoints for the `kubernetes` service may not be loopback addresses
                "--endpoint-reconciler-type=none",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={self.ca.cert}",
                f"--requestheader-client-ca-file={front_proxy_ca.cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={front_proxy_client.cert}",
                f"--proxy-client-key-file={front_proxy_client.key}",
                f"--service-account-key-file={sa_pub_file}",
                f"--service-account-signing-key-file={sa_key_file}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--authorization-mode=Node,RBAC",
                # added to the default plugins (which already include PodSecurity and
                # MutatingAdmissionWebhook); listed so a changed default cannot drop them
                "--enable-admission-plugins=NodeRestriction,PodSecurity,"
                "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.logdir / 'audit.log'}",
                "--audit-log-format=json",
                "--v=1",
            ],
        )
        self._write_kubeconfig(self.kubeconfig, self._admin, "admin")
        _wait(
            "kube-apiserver /readyz",
            lambda: self._api_get_ok("/readyz"),
            timeout,
            [etcd, apiserver],
        )

        # -- kube-controller-manager
        kcm_kubeconfig = self.workdir / "kcm.kubeconfig"
        self._write_kubeconfig(kcm_kubeconfig, kcm_client, "kube-controller-manager")
        kcm_port = free_port()
        kcm = self._core_spawn(
            "kube-controller-manager",
            [
                str(t.kube_controller_manager),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                "--leader-elect=false",
                # every default controller; none of them needs a cloud provider
                "--controllers=*",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key_file}",
                f"--root-ca-file={self.ca.cert}",
                f"--cluster-signing-cert-file={self.ca.cert}",
                f"--cluster-signing-key-file={self.ca.key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--profiling=false",
                "--v=1",
            ],
        )
        _wait(
            "kube-controller-manager /healthz",
            lambda: http_ok(f"https://127.0.0.1:{kcm_port}/healthz", verify=False),
            60,
            [etcd, apiserver, kcm],
        )
        # The serviceaccount controller creates `default` in every namespace; pods
        # cannot be admitted before it exists, so this means controllers are running.
        _wait(
            "the default ServiceAccount",
            lambda: self._api_get_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            60,
            [etcd, apiserver, kcm],
        )

    # ---- clients

    def _write_kubeconfig(self, path: Path, cred: IssuedCert, user: str) -> None:
        b64 = base64.b64encode
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "podinit-e2e",
                    "cluster": {
                        "server": self.apiserver_url,
                        "certificate-authority-data": b64(self.ca.cert_pem).decode(),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(cred.cert_pem).decode(),
                        "client-key-data": b64(cred.key_pem).decode(),
                    },
                }
            ],
            "contexts": [
                {"name": "podinit-e2e", "context": {"cluster": "podinit-e2e", "user": user}}
            ],
            "current-context": "podinit-e2e",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` (client cert), so RBAC
        applies as to that identity. For a ServiceAccount (e.g. the chart's, to run
        ``podinit serve`` outside the cluster with exactly its RBAC) use
        ``service_account_kubeconfig``."""
        slug = "".join(c if c.isalnum() else "-" for c in user)
        cred = self.ca.issue_client(f"user-{slug}", user, groups)
        path = self.workdir / f"user-{slug}.kubeconfig"
        self._write_kubeconfig(path, cred, user)
        return path

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig with the identity of ServiceAccount ``namespace/name``: RBAC
        matches ServiceAccount subjects by this username and these groups."""
        return self.user_kubeconfig(
            f"system:serviceaccount:{namespace}:{name}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the apiserver and authenticates as the admin (system:masters)."""
        assert self._admin is not None
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        return ctx

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """A raw JSON request to the apiserver as the admin."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.apiserver_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def _api_get_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(
                self.apiserver_url + path, context=self.ssl_context(), timeout=5
            ) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at the admin kubeconfig (for kubectl, helm)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl on PATH against this cluster; raises with stderr on failure."""
        return self._run([str(self.tools.kubectl), *args], input, check, timeout)

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.tools.helm), *args], input, check, timeout)

    def apply(self, *objects: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """``kubectl apply`` the given objects (dicts) server-side."""
        docs = yaml.safe_dump_all(objects)
        return self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=docs)

    def _run(
        self, argv: list[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        helm_home = self.workdir / "helm"
        env = {
            **self.env(),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
        res = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and res.returncode != 0:
            raise subprocess.CalledProcessError(
                res.returncode, argv, output=res.stdout, stderr=res.stderr
            )
        return res

    def wait_for(
        self, what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.25
    ) -> Any:
        """Poll ``check`` until it returns something truthy (returned); fails with ``what``.

        Also fails early, with the log tails, if etcd, the apiserver or the
        controller-manager has died (not for processes started with ``spawn``).
        """
        result: list[Any] = []

        def probe() -> bool:
            value = check()
            if value:
                result.append(value)
                return True
            return False

        _wait(what, probe, timeout, self.core, interval)
        return result[0]

    def wait_for_pods(
        self, namespace: str, selector: str, count: int, timeout: float = 90
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` pods match ``selector`` (a label selector such as
        ``app=web``) in ``namespace``; returns them as stored (pods stay Pending: there is
        no kubelet)."""

        def pods() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = self.kubectl_json(
                "get", "pods", "-n", namespace, "-l", selector
            )["items"]
            return items if len(items) >= count else None

        found: list[dict[str, Any]] = self.wait_for(
            f"{count} pods {selector} in {namespace}", pods, timeout
        )
        return found

    def audit_events(self) -> list[dict[str, Any]]:
        """The apiserver's audit log so far (pod creations carry admission annotations
        such as ``mutation.webhook.admission.k8s.io/round_0_index_0``)."""
        path = self.logdir / "audit.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def pod_admissions(self, namespace: str | None = None) -> list[PodAdmission]:
        """Pod creations seen by the apiserver (dry runs included), oldest first, with
        what each mutating webhook did, from the audit log. A webhook that was not called
        (namespace/object selector or matchConditions not matching, or no configuration)
        has no entry in ``mutations``; one that answered without a patch has
        ``mutated: False``; reinvocations show up as round 1."""
        result = []
        for event in self.audit_events():
            ref = event.get("objectRef", {})
            if ref.get("resource") != "pods" or ref.get("subresource") or event["verb"] != "create":
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            if namespace is not None and ref.get("namespace") != namespace:
                continue
            annotations: dict[str, str] = event.get("annotations") or {}
            mutations: list[dict[str, Any]] = []
            patches: list[dict[str, Any]] = []
            for key, value in annotations.items():
                prefix, _, where = key.partition("/")
                if prefix not in (_MUTATION_ANNOTATION, _PATCH_ANNOTATION):
                    continue
                _, r, _, i = where.split("_")  # round_<r>_index_<i>
                entry = {"round": int(r), "index": int(i), **json.loads(value)}
                (mutations if prefix == _MUTATION_ANNOTATION else patches).append(entry)
            result.append(
                PodAdmission(
                    namespace=ref.get("namespace", ""),
                    user=event["user"]["username"],
                    dry_run="dryRun=" in event.get("requestURI", ""),
                    status=int(event.get("responseStatus", {}).get("code", 0)),
                    mutations=sorted(mutations, key=_round_index),
                    patches=sorted(patches, key=_round_index),
                    annotations=annotations,
                )
            )
        return result

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.tail(lines)}" for p in self.procs)


def mutating_webhook_configuration(
    name: str,
    url: str,
    ca_bundle: str,
    *,
    webhook_name: str | None = None,
    failure_policy: str = "Ignore",
    reinvocation_policy: str = "Never",
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    match_conditions: list[dict[str, str]] | None = None,
    operations: Sequence[str] = ("CREATE",),
    timeout_seconds: int = 10,
) -> dict[str, Any]:
    """A MutatingWebhookConfiguration for pods calling ``url`` (e.g.
    ``https://127.0.0.1:8443/mutate``) and trusting ``ca_bundle`` (base64 PEM, e.g.
    ``CertAuthority.ca_bundle``). Apply it with ``ControlPlane.apply``."""
    webhook: dict[str, Any] = {
        "name": webhook_name or f"{name}.podinit-e2e.test",
        "clientConfig": {"url": url, "caBundle": ca_bundle},
        "rules": [
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": list(operations),
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ],
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "reinvocationPolicy": reinvocation_policy,
        "timeoutSeconds": timeout_seconds,
        "namespaceSelector": namespace_selector or {},
        "objectSelector": object_selector or {},
    }
    if match_conditions:
        webhook["matchConditions"] = match_conditions
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def http_ok(url: str, verify: bool = True) -> bool:
    """GET ``url`` answers 200 (``verify=False``: any TLS certificate)."""
    ctx = None
    if url.startswith("https") and not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False
