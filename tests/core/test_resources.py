"""CPU quantities as Kubernetes writes them, and the copy container's limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from webhook.core.resources import copy_cpu_limit, cpu_cores


@pytest.mark.parametrize(
    ("quantity", "cores"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("0.25", Decimal("0.25")),
        ("2000m", Decimal(2)),
        ("1e3m", Decimal(1)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        (2, Decimal(2)),
    ],
)
def test_cpu_quantities_are_read_in_cores(quantity: object, cores: Decimal) -> None:
    assert cpu_cores(quantity) == cores


@pytest.mark.parametrize(
    "quantity", ["", "one", "1x", "m", "1.2.3", ".", None, True, ["1"], {"cpu": 1}]
)
def test_what_is_not_a_quantity_is_none(quantity: object) -> None:
    assert cpu_cores(quantity) is None


def test_the_largest_limit_wins_as_written_and_malformed_ones_are_passed_over() -> None:
    containers = [
        {"resources": {"limits": {"cpu": "900m"}}},
        {"resources": {"limits": {"cpu": "1"}}},
        {"resources": {"limits": {"cpu": "lots"}}},
        {"resources": {"requests": {"cpu": "4"}}},
        {"resources": None},
        {},
    ]
    assert copy_cpu_limit(containers, "10m") == "1"


def test_no_cpu_limit_anywhere_means_none() -> None:
    assert copy_cpu_limit([{"resources": {"limits": {"memory": "1Gi"}}}, {}], "10m") is None
