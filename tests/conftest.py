"""Shared test setup: make the talent example importable as the `talent` package, and run
the tiers fast to slow."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent
TALENT_DIR = ROOT / "examples" / "talent"
if str(TALENT_DIR) not in sys.path:
    sys.path.insert(0, str(TALENT_DIR))

# Directories under tests/, fastest first; any other directory runs with the fast ones.
TIERS = {
    "unit": 0,
    "providers": 1,
    "sim": 1,
    "talent": 1,
    "integration": 2,
    "chaos": 3,
    "acceptance": 4,
    "browser": 5,
}
OTHER_TIER = 1


def tier(path: Path) -> int:
    """The tier of a test file: by its directory under tests/."""
    try:
        top = path.resolve().relative_to(TESTS_DIR).parts[0]
    except (ValueError, IndexError):
        return OTHER_TIER
    return TIERS.get(top, OTHER_TIER)


@pytest.hookimpl(trylast=True)  # after any plugin that reorders: keep its order within a tier
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests first, then the other fast directories, integration, chaos, acceptance,
    browser tests last (a stable sort: the order within a tier is kept)."""
    items.sort(key=lambda item: tier(item.path))


# The turing pytest plugin is tested the way a user meets it, with test files run by
# `pytester` (tests/plugin); pytest only takes `pytest_plugins` from the top-level conftest.
pytest_plugins = ["pytester"]
