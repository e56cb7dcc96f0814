"""Configuration: one name per setting across file and environment, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.config import ConfigError, load
from webhook.core import InjectionMode


def test_file_settings_use_camel_case_and_the_environment_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("initImage: file/init:1\nmountPath: /opt/init\n")
    monkeypatch.setenv("PODINIT_INIT_IMAGE", "env/init:2")
    config = load(path)
    assert (config.init_image, config.mount_path) == ("env/init:2", "/opt/init")


def test_unknown_settings_in_a_file_are_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("initImage: a\ninit_image: b\nnoSuchThing: 1\n")
    with pytest.raises(ConfigError, match="unknown settings init_image, noSuchThing"):
        load(path)


def test_invalid_values_name_the_setting_in_camel_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODINIT_ON_LOOKUP_FAILURE", "explode")
    with pytest.raises(ConfigError, match="onLookupFailure"):
        load()


def test_auto_mode_uses_image_volumes_from_kubernetes_1_35() -> None:
    config = load()
    assert config.inject_settings(kubernetes_version=(1, 34)).injection_mode is InjectionMode.COPY
    assert (
        config.inject_settings(kubernetes_version=(1, 35)).injection_mode
        is InjectionMode.IMAGE_VOLUME
    )
    assert config.inject_settings().injection_mode is InjectionMode.COPY


def test_a_relative_mount_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mountPath must be absolute"):
        load(mount_path="podinit").inject_settings()


def test_a_kubelet_service_link_in_podinit_port_is_not_taken_for_the_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODINIT_PORT", "tcp://10.96.0.12:443")  # a Service named podinit
    assert load().port == 8443


def test_a_list_setting_in_the_environment_that_is_not_json_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODINIT_KNOWN_INITS", "tini")
    with pytest.raises(ConfigError, match="knownInits"):
        load()


def test_invalid_names_are_reported_under_their_setting_names() -> None:
    with pytest.raises(ConfigError, match="volumeName must be a DNS-1123 label"):
        load(volume_name="Podinit_Vol").inject_settings()
