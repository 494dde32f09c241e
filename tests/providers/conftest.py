"""Fixtures for the provider tests: a scripted server, a fake API key, a closed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from providers.stub import FAKE_KEY, KEY_ENV, StubServer


@pytest.fixture(autouse=True)
def _forget_negotiated_modes() -> Iterator[None]:
    """Each test starts with no structured mode remembered (they are per process)."""
    from turing.providers.openai import NEGOTIATED

    NEGOTIATED.clear()
    yield
    NEGOTIATED.clear()


@pytest.fixture
def server() -> Iterator[StubServer]:
    with StubServer() as stub:
        yield stub


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
