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
