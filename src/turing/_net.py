"""Addresses and URLs as Turing shows them: whether a host is this machine only, and a URL
with its password masked (the CLI's startup lines, the dashboard's pages)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def masked_url(url: str) -> str:
    """A URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return url
