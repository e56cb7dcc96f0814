"""Precedence (flags, then environment, then file, then defaults) next to a kubelet service link."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.config import ConfigError, load

# What the kubelet sets in every pod of a namespace with a Service named podinit (service links).
SERVICE_LINK = "tcp://10.96.0.10:443"


def test_a_kubelet_service_link_in_podinit_port_leaves_the_port_of_the_config_file_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 9443\n")
    monkeypatch.setenv("PODINIT_PORT", SERVICE_LINK)
    assert load(path).port == 9443


def test_a_kubelet_service_link_in_podinit_port_leaves_the_port_of_podinit_config_file_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 9443\n")
    monkeypatch.setenv("PODINIT_CONFIG_FILE", str(path))
    monkeypatch.setenv("PODINIT_PORT", SERVICE_LINK)
    assert load().port == 9443


def test_a_port_number_in_podinit_port_still_wins_over_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 9443\n")
    monkeypatch.setenv("PODINIT_PORT", "9000")
    assert load(path).port == 9000


def test_a_port_flag_wins_over_a_kubelet_service_link_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 9443\n")
    monkeypatch.setenv("PODINIT_PORT", SERVICE_LINK)
    assert load(path, port=7443).port == 7443


def test_a_service_link_written_as_the_port_in_a_config_file_is_an_invalid_port(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"port: {SERVICE_LINK}\n")
    with pytest.raises(ConfigError, match=r"^port: Input should be a valid integer"):
        load(path)
