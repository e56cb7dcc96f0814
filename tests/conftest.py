"""Options shared by the whole suite."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings

# `make mutation` (docs/mutation.md): one failing example kills a mutant; shrinking it would
# run the mutant (often one that loops) hundreds of times more for nothing.
settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden files from the output"
    )
