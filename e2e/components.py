"""The control plane's programs as command lines, and the key material they share.

Pure: nothing here starts a process (e2e.controlplane does); every flag has its reason
next to it, so a changed Kubernetes default is a one-place edit.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from e2e.pki import CertAuthority, IssuedCert, pem_key

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterKeys:
    """Certificates and keys issued once per control plane."""

    serving: IssuedCert  # the apiserver's
    admin: IssuedCert  # system:masters
    controller_manager: IssuedCert
    front_proxy_ca: CertAuthority
    front_proxy_client: IssuedCert
    sa_key: Path  # service-account token signing key
    sa_pub: Path
    kubelet_client: IssuedCert | None  # the apiserver's client certificate for kubelets
    # The apiserver's client certificate for admission webhooks (its AdmissionConfiguration),
    # from a CA of its own: what a webhook's clientCaFile trusts.
    webhook_client_ca: CertAuthority
    webhook_client: IssuedCert

    @classmethod
    def issue(cls, ca: CertAuthority, *, address: str) -> ClusterKeys:
        hosts = [*dict.fromkeys([LOOPBACK, address]), "localhost", KUBERNETES_SERVICE_IP]
        hosts += [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        # front proxy (request-header authentication, for aggregated APIs): not used by
        # the tests, configured so delegated authentication is complete and quiet
        front_proxy_ca = CertAuthority(ca.directory, "front-proxy")
        sa_key = ec.generate_private_key(ec.SECP256R1())
        sa_key_file, sa_pub_file = ca.directory / "sa.key", ca.directory / "sa.pub"
        sa_key_file.write_bytes(pem_key(sa_key))
        sa_pub_file.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        kubelet_client = None
        if address != LOOPBACK:
            kubelet_client = ca.issue_client(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"]
            )
        webhook_client_ca = CertAuthority(ca.directory, "webhook-client")
        return cls(
            serving=ca.issue_server("apiserver", hosts),
            admin=ca.issue_client("admin", "podinit-e2e-admin", ["system:masters"]),
            controller_manager=ca.issue_client("kcm", "system:kube-controller-manager"),
            front_proxy_ca=front_proxy_ca,
            front_proxy_client=front_proxy_ca.issue_client(
                "front-proxy-client", "front-proxy-client"
            ),
            sa_key=sa_key_file,
            sa_pub=sa_pub_file,
            kubelet_client=kubelet_client,
            webhook_client_ca=webhook_client_ca,
            webhook_client=webhook_client_ca.issue_client(
                "apiserver-webhook-client", "kube-apiserver-webhook-client"
            ),
        )


def write_kubeconfig(
    path: Path, *, server: str, ca_pem: bytes, cred: IssuedCert, user: str
) -> None:
    """A kubeconfig for ``server`` with ``cred`` embedded, readable by its owner only."""
    b64 = base64.b64encode
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "podinit-e2e",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem).decode()},
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
        "contexts": [{"name": "podinit-e2e", "context": {"cluster": "podinit-e2e", "user": user}}],
        "current-context": "podinit-e2e",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def write_admission_configuration(directory: Path, client: IssuedCert) -> Path:
    """An AdmissionConfiguration whose webhook plugins present `client` to every webhook
    (the kubeconfig's `*` user: servers that do not ask for a client certificate never see
    it), as a cluster whose webhooks verify the apiserver is configured."""
    users = {
        "name": "*",
        "user": {"client-certificate": str(client.cert), "client-key": str(client.key)},
    }
    kubeconfig = directory / "webhook-clients.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "users": [users]}))
    webhook = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    plugins = [
        {"name": name, "configuration": webhook}
        for name in ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")
    ]
    path = directory / "admission.yaml"
    configuration = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": plugins,
    }
    path.write_text(yaml.safe_dump(configuration))
    return path


def etcd_argv(binary: Path, *, data_dir: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        str(binary),
        "--name=e2e",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=e2e={peer_url}",
        "--initial-cluster-state=new",
        "--log-level=warn",
    ]


def apiserver_argv(
    binary: Path,
    *,
    keys: ClusterKeys,
    client_ca: Path,
    etcd_url: str,
    address: str,
    port: int,
    audit_policy: Path,
    audit_log: Path,
    admission_configuration: Path,
    feature_gates: Mapping[str, bool] | None = None,
) -> list[str]:
    if keys.kubelet_client is None:
        # endpoints for the `kubernetes` service may not be loopback addresses
        node_flags = ["--endpoint-reconciler-type=none"]
    else:
        # exec, logs and port-forward: the kubelet at its InternalIP (not its hostname,
        # which the machine's DNS does not know), as a client it trusts
        node_flags = [
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={keys.kubelet_client.cert}",
            f"--kubelet-client-key={keys.kubelet_client.key}",
        ]
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        *node_flags,
        f"--tls-cert-file={keys.serving.cert}",
        f"--tls-private-key-file={keys.serving.key}",
        f"--client-ca-file={client_ca}",
        f"--requestheader-client-ca-file={keys.front_proxy_ca.cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={keys.front_proxy_client.cert}",
        f"--proxy-client-key-file={keys.front_proxy_client.key}",
        f"--service-account-key-file={keys.sa_pub}",
        f"--service-account-signing-key-file={keys.sa_key}",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=Node,RBAC",
        # added to the default plugins (which already include PodSecurity and
        # MutatingAdmissionWebhook); listed so a changed default cannot drop them
        "--enable-admission-plugins=NodeRestriction,PodSecurity,"
        "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
        f"--admission-control-config-file={admission_configuration}",
        "--allow-privileged=true",
        "--profiling=false",
        f"--audit-policy-file={audit_policy}",
        f"--audit-log-path={audit_log}",
        "--audit-log-format=json",
        *feature_gates_flag(feature_gates or {}),
        "--v=1",
    ]


def feature_gates_flag(gates: Mapping[str, bool]) -> list[str]:
    """``--feature-gates=A=true,B=false`` (sorted), or nothing for no gates."""
    if not gates:
        return []
    pairs = ",".join(f"{name}={str(on).lower()}" for name, on in sorted(gates.items()))
    return [f"--feature-gates={pairs}"]


def controller_manager_argv(
    binary: Path, *, kubeconfig: Path, port: int, cert_dir: Path, ca: CertAuthority, sa_key: Path
) -> list[str]:
    return [
        *_secured_component(binary, kubeconfig=kubeconfig, port=port),
        f"--cert-dir={cert_dir}",
        # every default controller; none of them needs a cloud provider
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={sa_key}",
        f"--root-ca-file={ca.cert}",
        f"--cluster-signing-cert-file={ca.cert}",
        f"--cluster-signing-key-file={ca.key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_argv(binary: Path, *, kubeconfig: Path, port: int) -> list[str]:
    return [
        *_secured_component(binary, kubeconfig=kubeconfig, port=port),
        "--profiling=false",
        "--v=1",
    ]


def _secured_component(binary: Path, *, kubeconfig: Path, port: int) -> list[str]:
    """What the controller-manager and the scheduler share: one kubeconfig for the apiserver
    and for checking who calls their own HTTPS port, on loopback, no leader election."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        "--leader-elect=false",
    ]
