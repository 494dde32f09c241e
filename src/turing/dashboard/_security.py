"""Who is asking, and whether a POST may change anything.

A session is a signed cookie (HMAC-SHA256 over its JSON: the reviewer's name and a random
CSRF token), so the server keeps no session table and a forged or edited cookie is refused.
With a token the login form sets it (and `Authorization: Bearer <token>` works for scripts,
which carry no cookie and so need no CSRF token); without one every visitor gets a session
named after `--as`. A state-changing request must be a POST whose `csrf` field equals the
session's token (`hmac.compare_digest`) and whose Origin, when the browser sends one, is this
server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

COOKIE = "turing_session"
MAX_NAME = 64


@dataclass(frozen=True)
class Session:
    who: str
    csrf: str
    bearer: bool = False  # a script with the token: no cookie, no CSRF token needed


class Signer:
    """Signs and reads session cookies with a key that lives as long as the process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def dump(self, session: Session) -> str:
        payload = base64.urlsafe_b64encode(
            json.dumps({"who": session.who, "csrf": session.csrf}).encode()
        )
        return f"{payload.decode()}.{self._mac(payload)}"

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            data: Any = json.loads(base64.urlsafe_b64decode(payload.encode()))
            return Session(str(data["who"]), str(data["csrf"]))
        except (ValueError, KeyError, TypeError):
            return None


def new_session(who: str) -> Session:
    return Session(clean_name(who) or "anonymous", secrets.token_urlsafe(24))


def clean_name(name: str) -> str:
    """A reviewer's name as recorded: printable, one line, at most MAX_NAME characters."""
    return "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME]


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def csrf_ok(session: Session | None, given: str | None) -> bool:
    if session is None:
        return False
    if session.bearer:
        return True
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


def same_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """A POST from a page of this server: its Origin (or, lacking one, its Referer) names
    our host. Browsers send Origin on every cross-origin POST, so a missing one with no
    Referer is a script or an old client, which the CSRF token still guards."""
    source = origin if origin and origin != "null" else referer
    if origin == "null":
        return False
    if not source:
        return True
    return urlsplit(source).netloc == (host or "")
