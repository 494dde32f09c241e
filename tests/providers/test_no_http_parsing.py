"""No module in src/ speaks HTTP by itself: the providers use kept clients (the official
`ollama` and `openai` clients, `aiohttp`); only the simulator, a server, has server code
(starlette and uvicorn), and it parses no HTTP either."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "turing"

# what a hand-written HTTP client or parser needs
FORBIDDEN = {
    "an HTTP version literal": re.compile(r"""b?["']HTTP/1\.[01]"""),
    "a status line or header split by hand": re.compile(r"""b["']\\r\\n(\\r\\n)?["']"""),
    "asyncio streams": re.compile(r"\bopen_connection\b|\bStreamReader\b|\bStreamWriter\b"),
    "an httpx transport of its own": re.compile(r"AsyncBaseTransport|BaseTransport\)"),
}
# and in the providers, no socket at all (elsewhere: the sandbox and the orchestrator use
# one for other things, the simulator binds its listening socket for uvicorn)
SOCKETS = re.compile(r"^\s*(import socket|from socket import)|\bsocket\.", re.M)


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_parses_http_itself(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    where = str(path.relative_to(SRC))
    for what, pattern in FORBIDDEN.items():
        assert not pattern.search(text), f"{where} has {what}: use a kept HTTP client"
    if where.startswith("providers/"):
        assert not SOCKETS.search(text), f"{where} uses sockets: use a kept HTTP client"


def test_the_hand_written_transport_is_gone() -> None:
    assert not (SRC / "providers" / "_transport.py").exists()
    assert modules(), "no sources found"
