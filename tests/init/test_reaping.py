"""3c: every zombie is reaped, even after a storm of orphans."""

from typing import Any

from tests.scale import scaled

from .conftest import TIMEOUT, helper


def test_no_zombie_is_left_after_a_storm_of_ten_thousand_orphans(run: Any) -> None:
    init = run(helper("zombie_storm.py", scaled(10_000), TIMEOUT / 2))
    assert init.line(TIMEOUT) == "zombies 0"
    assert init.wait() == 0


def test_a_subreaper_reaps_its_adopted_orphans_too(run: Any) -> None:
    init = run(helper("zombie_storm.py", scaled(1_000), TIMEOUT / 2), pid1=False)
    assert init.line(TIMEOUT) == "zombies 0"
    assert init.wait() == 0
