"""The registry* settings of webhook/config.py reach the resolver, with its defaults."""

from __future__ import annotations

import pytest

from webhook.config import Config, ConfigError
from webhook.registry import ResolverSettings
from webhook.registry_lookups import make_resolver


def test_the_configs_registry_safety_defaults_are_the_resolvers() -> None:
    config, settings = Config(), ResolverSettings()
    assert tuple(config.registry_denied_networks) == settings.denied_networks
    assert tuple(config.registry_allowed_networks) == settings.allowed_networks
    assert config.registry_connections_per_host == settings.connections_per_host
    assert config.registry_lookups_per_admission == settings.lookups_per_admission
    assert config.registry_lookups_per_namespace == settings.lookups_per_namespace


@pytest.mark.parametrize("setting", ["registry_denied_networks", "registry_allowed_networks"])
def test_a_network_that_is_not_a_cidr_is_a_config_error_naming_the_setting(setting: str) -> None:
    config = Config(**{setting: ["10.96.0.0/12", "kube-services"]})
    with pytest.raises(ConfigError, match=r"registry(Denied|Allowed)Networks: 'kube-services'"):
        make_resolver(config)


def test_every_registry_setting_of_the_config_reaches_the_resolver() -> None:
    config = Config(
        default_platform_os="windows",
        default_architecture="arm64",
        registry_mirrors={"docker.io": "mirror.example:5000"},
        insecure_registries=["plain.example:5000"],
        timeout_seconds=4,
        tag_ttl_seconds=7.0,
        negative_ttl_seconds=3.0,
        cache_entries=123,
        registry_denied_networks=["10.96.0.0/12"],
        registry_allowed_networks=["10.96.0.10/32"],
        registry_connections_per_host=3,
        registry_lookups_per_admission=4,
        registry_lookups_per_namespace=5,
    )
    settings = make_resolver(config).settings
    assert (settings.default_platform.os, settings.default_platform.architecture) == (
        "windows",
        "arm64",
    )
    assert settings.mirrors == {"docker.io": "mirror.example:5000"}
    assert settings.insecure == frozenset({"plain.example:5000"})
    assert settings.ca_bundle is None
    assert settings.default_timeout == pytest.approx(2.7)  # 4 s, less the time to answer
    assert (settings.tag_ttl, settings.negative_ttl, settings.max_entries) == (7.0, 3.0, 123)
    assert settings.denied_networks == ("10.96.0.0/12",)
    assert settings.allowed_networks == ("10.96.0.10/32",)
    assert (
        settings.connections_per_host,
        settings.lookups_per_admission,
        settings.lookups_per_namespace,
    ) == (3, 4, 5)
