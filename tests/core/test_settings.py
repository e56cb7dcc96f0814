"""Settings that would make every mutated pod invalid are refused when they are made."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core import InjectSettings
from webhook.core.settings import Resources


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"mount_path": "podinit"}, "mount_path must be absolute and free of '$': 'podinit'"),
        ({"mount_path": "/pod$init"}, "mount_path must be absolute and free of '$'"),
        ({"run_as_user": 0}, "run_as_user must be a non-zero uid (Pod Security 'restricted')"),
        ({"copy_container_name": "Copy_Init"}, "copy_container_name must be a DNS-1123 label"),
        ({"volume_name": "v" * 59}, "volume_name must be a DNS-1123 label of at most 58"),
        ({"init_image": " "}, "init_image must name an image"),
        ({"volume_size_limit": "8 Mi"}, "volume_size_limit must be a Kubernetes quantity such as"),
        (
            {"copy_container_resources": Resources(requests=(("cpu", "1 core"),))},
            "copy_container_resources.requests.cpu must be a Kubernetes quantity such as",
        ),
        (
            {
                "volume_size_limit": "lots",
                "copy_container_resources": Resources(requests=(("cpu", "1"),)),
            },
            "volume_size_limit must be a Kubernetes quantity such as 8Mi: 'lots'",
        ),
    ],
)
def test_a_setting_no_pod_could_use_is_refused_naming_it(
    setting: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        InjectSettings(**setting)
    assert str(error.value).startswith(message)


def test_the_settings_podinit_can_use_are_accepted() -> None:
    """The limits are the edges themselves: uid 1 is not root."""
    InjectSettings(run_as_user=1, volume_size_limit="1", init_image="i")
