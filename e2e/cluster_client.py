"""The client half of a running cluster (e2e.controlplane.ControlPlane): kubeconfigs for
other identities, raw API requests, kubectl and helm against it, waiting, the audit log."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from e2e import audit
from e2e.audit import PodAdmission
from e2e.components import write_kubeconfig
from e2e.pki import CertAuthority, IssuedCert
from e2e.processes import Process, wait_until
from e2e.tools import Tools


@dataclass(kw_only=True)
class ClusterClient:
    """What tests do with a cluster once it runs (e2e.controlplane.ControlPlane starts it)."""

    tools: Tools
    workdir: Path
    logdir: Path
    ca: CertAuthority
    apiserver_url: str
    kubeconfig: Path
    core: list[Process] = field(default_factory=list)  # whose death fails a wait
    _admin: IssuedCert | None = None

    def write_kubeconfig(self, path: Path, cred: IssuedCert, user: str) -> None:
        """A kubeconfig for this cluster with ``cred`` embedded (for node components)."""
        write_kubeconfig(
            path, server=self.apiserver_url, ca_pem=self.ca.cert_pem, cred=cred, user=user
        )

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` (client cert), so RBAC
        applies as to that identity. For a ServiceAccount (e.g. the chart's, to run
        ``podinit serve`` outside the cluster with exactly its RBAC) use
        ``service_account_kubeconfig``."""
        slug = "".join(c if c.isalnum() else "-" for c in user)
        cred = self.ca.issue_client(f"user-{slug}", user, groups)
        path = self.workdir / f"user-{slug}.kubeconfig"
        self.write_kubeconfig(path, cred, user)
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
        """Run the built kubectl of ``tools.kube_version`` (checked at start to be within
        the apiserver's skew) against this cluster; raises with stderr on failure."""
        return self._run([str(self.tools.kubectl), *args], input, check, timeout)

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def helm(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
        major: int = 3,
    ) -> subprocess.CompletedProcess[str]:
        """Helm 3 (``HELM_VERSION``), or with ``major=4`` Helm 4 (``HELM4_VERSION``)."""
        helm = {3: self.tools.helm, 4: self.tools.helm4}[major]
        return self._run([str(helm), *args], input, check, timeout)

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
        return wait_until(what, check, timeout, self.core, interval)

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
        return audit.read_events(self.logdir / "audit.log")

    def pod_admissions(self, namespace: str | None = None) -> list[PodAdmission]:
        """Pod creations seen by the apiserver (dry runs included), oldest first, with
        what each mutating webhook did, from the audit log (see e2e.audit.pod_admissions)."""
        return audit.pod_admissions(self.audit_events(), namespace)
