"""The dashboard's session cookies, origin checks and URL masking, attacked directly."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from turing._net import is_loopback, masked_url
from turing.dashboard._security import Session, Signer, csrf_ok, new_session, same_origin


def test_a_session_cookie_round_trips_and_refuses_tampering() -> None:
    signer = Signer()
    cookie = signer.dump(new_session("ann"))
    session = signer.load(cookie)
    assert session is not None and session.who == "ann"
    payload, _, mac = cookie.rpartition(".")
    forged = Signer().dump(Session("mallory", session.csrf))  # another key
    assert signer.load(forged) is None
    assert signer.load(payload + "." + "0" * len(mac)) is None
    assert signer.load("garbage") is None and signer.load(None) is None


def test_csrf_needs_the_session_token_unless_bearer() -> None:
    session = new_session("ann")
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, session.csrf + "x")
    assert not csrf_ok(None, "anything")
    assert csrf_ok(Session("script", "", bearer=True), None)


def test_same_origin_by_origin_or_referer() -> None:
    assert same_origin("http://127.0.0.1:8765", None, "127.0.0.1:8765")
    assert not same_origin("http://evil.example", None, "127.0.0.1:8765")
    assert not same_origin("null", None, "127.0.0.1:8765")
    assert same_origin(None, "http://127.0.0.1:8765/tasks", "127.0.0.1:8765")
    assert not same_origin(None, "http://evil.example/x", "127.0.0.1:8765")


def test_loopback_and_masking() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
    masked = masked_url("postgresql://app:pa55word@db.example:5432/prod?schema=x")
    assert masked == "postgresql://app:***@db.example:5432/prod?schema=x"
    assert masked_url("sqlite:///x.db") == "sqlite:///x.db"


def test_url_passwords_inside_text_are_masked() -> None:
    from turing.dashboard._context import masked_text

    actor = "openai:gpt-4o@https://proxy-user:pr0xy-pass@llm.example/v1"
    assert masked_text(actor) == "openai:gpt-4o@https://proxy-user:***@llm.example/v1"
    assert masked_text("ollama:qwen@http://127.0.0.1:11434") == "ollama:qwen@http://127.0.0.1:11434"
