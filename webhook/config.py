"""Configuration: one name per setting, camelCase in the config file and Helm values
(`initImage`), upper snake case with the PODINIT_ prefix in the environment
(`PODINIT_INIT_IMAGE`). Precedence: command-line flags, then environment, then file, then defaults.
"""

from __future__ import annotations

import dataclasses
import re
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from webhook.core import ImageConfig, ImageOverride, InjectionMode, InjectSettings
from webhook.core.settings import LookupFailurePolicy, Resources

# Kubernetes turned the ImageVolume feature on by default in this minor release.
IMAGE_VOLUME_DEFAULT_SINCE = (1, 35)
# Seconds past timeoutSeconds before the server closes a connection whose exchange is unfinished.
REQUEST_TIMEOUT_MARGIN = 5


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the setting or file."""


class OverrideEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entrypoint: list[str] = []
    cmd: list[str] = []


class ResourcesEntry(BaseModel):
    """A container's `resources` as Kubernetes writes them (quantities as strings)."""

    model_config = ConfigDict(extra="forbid")
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


# The injection settings' defaults live in the core (webhook/core/settings.py); the config's
# fields for them take these values, so a default is written once.
_CORE_DEFAULTS = InjectSettings()


def _core_default(name: str) -> Any:
    """The core's default of a setting, as the config file writes it (enum values, lists)."""
    value = getattr(_CORE_DEFAULTS, name)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODINIT_", extra="forbid", frozen=True)

    # What gets injected (defaults: the core's InjectSettings)
    init_image: str = _core_default("init_image")
    init_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = _core_default(
        "init_image_pull_policy"
    )
    # Not the core's default: `auto` is resolved against the cluster by inject_settings.
    injection_mode: Literal["auto", "copy", "imageVolume"] = "auto"
    mount_path: str = _core_default("mount_path")
    volume_name: str = _core_default("volume_name")
    volume_size_limit: str = _core_default("volume_size_limit")
    copy_container_name: str = _core_default("copy_container_name")
    run_as_user: int | None = Field(_core_default("run_as_user"), gt=0)
    # None: the copy container mirrors the smallest app container's (core/resources.py).
    copy_container_resources: ResourcesEntry | None = None
    # Which containers
    known_inits: list[str] = _core_default("known_inits")
    inject_init_containers: bool = _core_default("inject_init_containers")
    skip_shared_process_namespace: bool = _core_default("skip_shared_process_namespace")
    # Image configs
    on_lookup_failure: Literal["skip", "deny"] = _core_default("on_lookup_failure")
    pin_image_digests: bool = _core_default("pin_image_digests")
    default_architecture: str = _core_default("default_architecture")
    # The core's default is no overrides; the test that Config() gives InjectSettings() holds it.
    image_overrides: dict[str, OverrideEntry] = {}

    # Admission server
    host: str = "0.0.0.0"
    port: int = Field(8443, gt=0, lt=65536)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_reload_seconds: float = Field(2.0, gt=0)
    timeout_seconds: int = Field(5, ge=1, le=30)  # the webhook configuration's timeoutSeconds
    # A request/response exchange not finished this long after it began closes its connection;
    # None: timeoutSeconds + 5 (the apiserver has given up on it by then).
    request_timeout_seconds: float | None = Field(None, gt=0)
    max_connections: int = Field(1000, ge=1)  # per replica; more are closed at once
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # PEM CA(s) that issue the apiserver's webhook client certificate: set, a client without a
    # certificate from them is refused at the TLS handshake on `port` (docs/threat-model.md).
    client_ca_file: Path | None = None
    # /healthz, /readyz and /metrics (no /mutate, no client certificate) on a port of their own,
    # so that a NetworkPolicy can admit the apiserver alone to `port`; None: `port` only.
    metrics_port: int | None = Field(None, gt=0, lt=65536)
    # Warning Events for pods left unwrapped (webhook/server/events.py)
    events: bool = True
    event_queue_size: int = Field(1000, ge=1)  # failures not seen recently, waiting to be written
    # Certificates: files (tlsCertFile/tlsKeyFile, e.g. from cert-manager) or selfManaged
    certificates: Literal["files", "selfManaged"] = "files"
    service_name: str = "podinit"
    namespace: str = "podinit"
    certificate_secret: str = "podinit-tls"
    webhook_configuration: str = "podinit"
    certificate_hosts: list[str] = []  # selfManaged: extra DNS names or IPs (webhook.url mode)
    certificate_check_seconds: float = Field(300.0, gt=0)  # selfManaged: renewal/caBundle check
    # Registry lookups
    registry_mirrors: dict[str, str] = {}
    insecure_registries: list[str] = []
    registry_ca_file: Path | None = None
    docker_config_file: Path | None = None  # extra dockerconfigjson, tried after pull secrets
    pull_secret_lookups: bool = True  # the pod's imagePullSecrets, else its ServiceAccount's
    tag_ttl_seconds: float = Field(300.0, ge=0)
    negative_ttl_seconds: float = Field(10.0, ge=0)
    cache_entries: int = Field(10_000, gt=0)
    kubeconfig: Path | None = None  # outside a cluster; inside, the ServiceAccount is used
    default_platform_os: str = "linux"
    # Where a tenant's image may make a lookup connect, and each tenant's share of lookups
    # (docs/threat-model.md); the defaults are webhook.registry's ResolverSettings'.
    registry_denied_networks: list[str] = [
        *("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"),  # loopback, "this host"
        *("169.254.0.0/16", "fe80::/10"),  # link-local: cloud metadata services
        *("100.100.100.200/32", "fd00:ec2::254/128"),  # metadata outside link-local
    ]
    registry_allowed_networks: list[str] = []  # exceptions to the denied networks
    # Deny the cluster's Service and Pod ranges too, read from the API while serving
    # (webhook/server/cluster_networks.py).
    registry_deny_cluster_networks: bool = True
    registry_connections_per_host: int = Field(8, ge=1)
    registry_lookups_per_admission: int = Field(8, ge=1)
    registry_lookups_per_namespace: int = Field(32, ge=1)
    # Pods that are unwrapped now (webhook/server/watching.py): the replica holding the Lease
    # `leaseName` (in `namespace`; `podName` names the holder) watches pods' metadata
    # cluster-wide and exports podinit_pods_unwrapped; `reconcile` replaces slipped pods of
    # workloads through the Eviction API (webhook/server/reconcile.py).
    pod_watch: bool = False
    lease_name: str = "podinit-leader"
    pod_name: str | None = None  # default: the host name (in a pod: the pod's name)
    reconcile: bool = False
    reconcile_dry_run: bool = False
    reconcile_probe_namespace: str | None = None  # selected by the webhook; dry-run creates
    reconcile_evictions_per_minute: float = Field(6.0, gt=0)
    reconcile_namespace_evictions_per_minute: float = Field(2.0, gt=0)
    reconcile_ready_timeout_seconds: float = Field(600.0, gt=0)
    reconcile_retry_seconds: float = Field(60.0, gt=0)  # after a refused eviction, doubling
    reconcile_stall_seconds: float = Field(3600.0, gt=0)  # a workload whose replacement failed
    reconcile_interval_seconds: float = Field(5.0, gt=0)
    reconcile_single_pod_workloads: bool = False  # evict the one pod of a 1-replica workload

    config_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _WithoutServiceLink(settings_cls, env_settings)

    @property
    def lookup_budget(self) -> float:
        """Seconds the registry may take within one admission, leaving time to answer."""
        return max(0.5, self.timeout_seconds * 0.8 - 0.5)

    @property
    def request_timeout(self) -> float:
        """Seconds a request/response exchange may take before its connection is closed."""
        if self.request_timeout_seconds is not None:
            return self.request_timeout_seconds
        return self.timeout_seconds + REQUEST_TIMEOUT_MARGIN

    def inject_settings(
        self,
        *,
        kubernetes_version: tuple[int, int] | None = None,
        nodes_mount: bool | None = None,
    ) -> InjectSettings:
        """The core's settings; `auto` mode picks imageVolume on clusters whose apiserver has
        it on and whose nodes can mount it (`nodes_mount`, webhook/server/nodes.py; None: no
        node to ask, the apiserver decides)."""
        mode = self.injection_mode
        if mode == "auto":
            modern = (
                kubernetes_version is not None and kubernetes_version >= IMAGE_VOLUME_DEFAULT_SINCE
            )
            mode = "imageVolume" if modern and nodes_mount is not False else "copy"
        overrides = tuple(
            ImageOverride(pattern, ImageConfig(entrypoint=tuple(e.entrypoint), cmd=tuple(e.cmd)))
            for pattern, e in self.image_overrides.items()
        )
        # Every core setting with a config key of the same name; the others keep the core's
        # default (tests/cli/test_settings_defined_once.py lists them).
        values: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(InjectSettings)
            if f.name in type(self).model_fields
        }
        fixed = self.copy_container_resources
        values.update(
            copy_container_resources=None
            if fixed is None
            else Resources(tuple(fixed.requests.items()), tuple(fixed.limits.items())),
            injection_mode=InjectionMode(mode),
            known_inits=tuple(self.known_inits),
            on_lookup_failure=LookupFailurePolicy(self.on_lookup_failure),
            image_overrides=overrides,
        )
        try:
            return InjectSettings(**values)
        except ValueError as error:
            raise ConfigError(_setting_names(str(error))) from error


class _WithoutServiceLink(PydanticBaseSettingsSource):
    """The environment, less a kubelet service link: in a pod next to a Service named podinit,
    the kubelet sets PODINIT_PORT=tcp://IP:PORT (Docker links). That is not our setting, so it
    counts as not set at all and the config file or the default applies."""

    def __init__(
        self, settings_cls: type[BaseSettings], environment: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self.environment = environment

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        values = self.environment()
        port = values.get("port")
        if isinstance(port, str) and port.startswith("tcp://"):
            del values["port"]
        return values


def read_file(path: Path) -> dict[str, Any]:
    """A YAML config file, keys in camelCase, turned into field names."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"config file {path}: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must be a mapping of settings")
    fields = set(Config.model_fields)
    unknown = sorted(k for k in data if snake(str(k)) not in fields or "_" in str(k))
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {', '.join(map(str, unknown))}")
    return {snake(str(k)): v for k, v in data.items()}


def load(config_file: Path | None = None, **flags: Any) -> Config:
    """File values under environment values under flags (flags that are None are not given)."""
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        from_env = Config(**given)
        path = config_file or from_env.config_file
        if path is None:
            return from_env
        env_set = from_env.model_fields_set - set(given)
        file_values = {k: v for k, v in read_file(path).items() if k not in env_set}
        return Config(**{**file_values, **given})
    except ValidationError as error:
        problems = "; ".join(
            f"{camel(str(e['loc'][0])) if e['loc'] else 'config'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigError(problems) from error
    except SettingsError as error:  # e.g. a list or map in the environment that is not JSON
        raise ConfigError(_setting_names(str(error))) from error


def read_setting_file(path: Path, setting: str) -> bytes:
    """The contents of a file a setting names; a ConfigError naming both when unreadable."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{camel(setting)}: cannot read {path}: {error.strerror}") from error


def _setting_names(text: str) -> str:
    """Field names in a message, as the user writes them (camelCase)."""
    return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: camel(m[0]), text)
