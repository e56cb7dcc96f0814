"""A realistic Deployment pod as the apiserver sends it at CREATE (~8 KB AdmissionReview).

Three containers: `api` and `worker` have no `command` (their images are looked up in the
registry), `envoy` is a sidecar with a `command` (no lookup). Metadata, labels, annotations,
ownerReferences, managedFields, env, ports, probes, resources, mounts and the defaults the
apiserver fills in are all there, so parsing and copying cost what they cost in a cluster.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

from e2e.reviews import pod_review


def _env(prefix: str, n: int) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": f"{prefix}_SETTING_{i}", "value": f"value-{i}-for-{prefix.lower()}"}
        for i in range(n)
    ]
    env += [
        {
            "name": "POD_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
        },
        {
            "name": "POD_IP",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
        },
        {
            "name": "DATABASE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "shop-db", "key": "password"}},
        },
    ]
    return env


def _probe(path: str, port: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": delay,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def _container(name: str, image: str, token_volume: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "limits": {"cpu": "1", "memory": "512Mi"},
            "requests": {"cpu": "250m", "memory": "256Mi"},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/shop", "readOnly": True},
            {
                "name": token_volume,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            },
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        **extra,
    }


def realistic_pod(
    api_image: str, worker_image: str, *, token_volume: str = "kube-api-access-x7k2p"
) -> dict[str, Any]:
    """One replica; the ServiceAccount admission plugin names `token_volume` per pod, before
    webhooks see it (kube-api-access-<5 random characters>)."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _metadata(),
        "spec": {
            "volumes": _volumes(token_volume),
            "containers": _containers(api_image, worker_image, token_volume),
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "shop",
            # copied from the ServiceAccount by its admission plugin, before webhooks run
            "imagePullSecrets": [{"name": "shop-registry"}],
            "serviceAccount": "shop",
            "securityContext": {"fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
            "affinity": _anti_affinity(),
            "schedulerName": "default-scheduler",
            "tolerations": [_toleration("not-ready"), _toleration("unreachable")],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }


_REPLICA_SET = "shop-api-7d9f8c6b5d"
_REPLICA_SET_UID = "0b6a4f9e-3c1d-4e2f-9a8b-7c6d5e4f3a2b"


def _labels() -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "shop",
        "app.kubernetes.io/instance": "shop-prod",
        "app.kubernetes.io/component": "api",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/version": "1.0.0",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": "shop-1.0.0",
        "pod-template-hash": "7d9f8c6b5d",
        "team": "checkout",
    }


def _metadata() -> dict[str, Any]:
    """A ReplicaSet's pod: generated name, fresh uid, owner reference, managedFields."""
    labels = _labels()
    return {
        "generateName": f"{_REPLICA_SET}-",
        "namespace": "shop",
        "uid": str(uuid.uuid4()),
        "creationTimestamp": None,
        "labels": labels,
        "annotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9090",
            "prometheus.io/path": "/metrics",
            "kubectl.kubernetes.io/restartedAt": "2026-11-20T10:15:00Z",
            "checksum/config": "3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e",
        },
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": _REPLICA_SET,
                "uid": _REPLICA_SET_UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": [_managed_fields(labels)],
    }


def _managed_fields(labels: dict[str, str]) -> dict[str, Any]:
    """The kube-controller-manager's entry: what it set when it created the pod."""
    return {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-11-29T12:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {
                "f:generateName": {},
                "f:labels": {f"f:{k}": {} for k in labels},
                "f:ownerReferences": {f'k:{{"uid":"{_REPLICA_SET_UID}"}}': {}},
            },
            "f:spec": {
                "f:containers": {
                    f'k:{{"name":"{name}"}}': {".": {}, "f:image": {}, "f:name": {}}
                    for name in ("api", "worker", "envoy")
                },
                "f:dnsPolicy": {},
                "f:restartPolicy": {},
                "f:serviceAccountName": {},
            },
        },
    }


def _volumes(token_volume: str) -> list[dict[str, Any]]:
    """A ConfigMap and the projected ServiceAccount token the admission plugin adds."""
    return [
        {"name": "config", "configMap": {"name": "shop-config", "defaultMode": 420}},
        {
            "name": token_volume,
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                ],
                "defaultMode": 420,
            },
        },
    ]


def _containers(api_image: str, worker_image: str, token_volume: str) -> list[dict[str, Any]]:
    """`api` and `worker` without `command` (looked up), `envoy` with one (no lookup)."""
    return [
        _container(
            "api",
            api_image,
            token_volume,
            args=["--port=8080", "--log-format=json"],
            ports=[
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
            ],
            env=_env("API", 8),
            livenessProbe=_probe("/healthz", 8080, 10),
            readinessProbe=_probe("/readyz", 8080, 5),
        ),
        _container(
            "worker",
            worker_image,
            token_volume,
            env=_env("WORKER", 8),
            livenessProbe={
                "exec": {"command": ["/bin/worker", "health"]},
                "periodSeconds": 30,
                "timeoutSeconds": 5,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        ),
        _container(
            "envoy",
            "docker.io/envoyproxy/envoy:v1.31.2",
            token_volume,
            command=["/usr/local/bin/envoy"],
            args=["-c", "/etc/envoy/envoy.yaml", "--log-level", "warn"],
            ports=[{"name": "proxy", "containerPort": 15001, "protocol": "TCP"}],
            readinessProbe=_probe("/ready", 15021, 1),
        ),
    ]


def _anti_affinity() -> dict[str, Any]:
    """Spread the replicas over nodes, as most Helm charts' defaults do."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "shop"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        }
    }


def _toleration(condition: str) -> dict[str, Any]:
    """One of the two the DefaultTolerationSeconds admission plugin adds to every pod."""
    return {
        "key": f"node.kubernetes.io/{condition}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }


def review_bytes(pod: dict[str, Any], *, namespace: str = "shop") -> bytes:
    """The AdmissionReview the apiserver POSTs for a pod CREATE."""
    return orjson.dumps(pod_review(pod, namespace=namespace))


def replica_reviews(api_image: str, worker_image: str, count: int) -> list[bytes]:
    """The reviews a ReplicaSet scaling by `count` sends: the same template, but each pod has
    its own request uid and ServiceAccount token volume name, as in a cluster."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's name-suffix alphabet
    chosen = random.Random(count)
    return [
        review_bytes(
            realistic_pod(
                api_image,
                worker_image,
                token_volume="kube-api-access-" + "".join(chosen.choices(alphabet, k=5)),
            )
        )
        for _ in range(count)
    ]
