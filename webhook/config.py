"""Configuration: one name per setting, camelCase in the config file and Helm values
(`initImage`), upper snake case with the PODINIT_ prefix in the environment
(`PODINIT_INIT_IMAGE`). Precedence: command-line flags, then environment, then file, then defaults.
"""

from __future__ import annotations

import re
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
from webhook.core.settings import DEFAULT_KNOWN_INITS, LookupFailurePolicy

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


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODINIT_", extra="forbid", frozen=True)

    # What gets injected
    init_image: str = "docker.io/podinit/init:0.1.0"
    init_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    injection_mode: Literal["auto", "copy", "imageVolume"] = "auto"
    mount_path: str = "/podinit"
    volume_name: str = "podinit"
    volume_size_limit: str = "8Mi"
    copy_container_name: str = "podinit-install"
    run_as_user: int = Field(65532, gt=0)
    # Which containers
    known_inits: list[str] = list(DEFAULT_KNOWN_INITS)
    inject_init_containers: bool = False
    skip_shared_process_namespace: bool = True
    # Image configs
    on_lookup_failure: Literal["skip", "deny"] = "skip"
    default_architecture: str = "amd64"
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
        self, *, kubernetes_version: tuple[int, int] | None = None
    ) -> InjectSettings:
        """The core's settings; `auto` mode picks imageVolume on clusters that have it on."""
        mode = self.injection_mode
        if mode == "auto":
            modern = (
                kubernetes_version is not None and kubernetes_version >= IMAGE_VOLUME_DEFAULT_SINCE
            )
            mode = "imageVolume" if modern else "copy"
        overrides = tuple(
            ImageOverride(pattern, ImageConfig(entrypoint=tuple(e.entrypoint), cmd=tuple(e.cmd)))
            for pattern, e in self.image_overrides.items()
        )
        try:
            return InjectSettings(
                init_image=self.init_image,
                init_image_pull_policy=self.init_image_pull_policy,
                injection_mode=InjectionMode(mode),
                mount_path=self.mount_path,
                volume_name=self.volume_name,
                volume_size_limit=self.volume_size_limit,
                copy_container_name=self.copy_container_name,
                run_as_user=self.run_as_user,
                known_inits=tuple(self.known_inits),
                inject_init_containers=self.inject_init_containers,
                skip_shared_process_namespace=self.skip_shared_process_namespace,
                on_lookup_failure=LookupFailurePolicy(self.on_lookup_failure),
                default_architecture=self.default_architecture,
                image_overrides=overrides,
            )
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
