"""Settings that would make every mutated pod invalid are refused when they are made."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core import InjectSettings


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"mount_path": "podinit"}, "mount_path must be absolute and free of '$': 'podinit'"),
        ({"mount_path": "/pod$init"}, "mount_path must be absolute and free of '$'"),
        ({"run_as_user": 0}, "run_as_user must be a non-zero uid"),
        ({"copy_container_name": "Copy_Init"}, "copy_container_name must be a DNS-1123 label"),
        ({"volume_name": "v" * 59}, "volume_name must be a DNS-1123 label of at most 58"),
        ({"init_image": " "}, "init_image must name an image"),
    ],
)
def test_a_setting_no_pod_could_use_is_refused_naming_it(
    setting: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        InjectSettings(**setting)
    assert message in str(error.value)
