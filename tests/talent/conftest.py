"""Shared fixtures: one fixed clock, generated records and one sample database per session."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from talent.generator import Posting, Profile, build_database, generate_postings, generate_profiles

NOW = datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
SEED = 1121


@pytest.fixture(scope="session")
def postings() -> list[Posting]:
    return generate_postings(SEED, 200, NOW)


@pytest.fixture(scope="session")
def profiles() -> list[Profile]:
    return generate_profiles(SEED, 250, NOW)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The default-sized database (1,200 postings, 250 profiles), built once."""
    path = tmp_path_factory.mktemp("talent") / "talent.db"
    return path, build_database(path, seed=SEED, now=NOW)


@pytest.fixture
def conn(sample_db: tuple[Path, dict[str, int]]) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(sample_db[0])
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def seed() -> int:
    return SEED
