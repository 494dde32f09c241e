"""A scripted HTTP server on 127.0.0.1 for the provider tests.

The providers are exercised through their official clients over real HTTP: each test
scripts the replies (status, JSON body, headers, delay) and reads back the requests the
client sent. It covers what the LLM simulator does not: Anthropic's protocol, any error
status or body on demand, and servers that echo credentials back.
`test_against_simulator.py` runs the Ollama and OpenAI actors against `turing.sim` too.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_KEY = "sk-test-Zq7fakeKEY0123456789abcdef"
KEY_ENV = "TURING_TEST_PROVIDER_KEY"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str/bytes -> sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Script = Reply | Callable[[Seen], Reply]


class StubServer:
    def __init__(self) -> None:
        self.replies: deque[Script] = deque()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with server._lock:
                    server.requests.append(seen)
                    script = server.replies.popleft() if server.replies else None
                reply = (
                    Reply(500, {"error": "no scripted reply"})
                    if script is None
                    else script(seen)
                    if callable(script)
                    else script
                )
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                if isinstance(payload, bytes):
                    data = payload
                elif isinstance(payload, str):
                    data = payload.encode()
                else:
                    data = json.dumps(payload).encode()
                with contextlib.suppress(OSError):
                    self.send_response(reply.status)
                    content_type = "application/json"
                    if isinstance(payload, str | bytes):
                        content_type = "text/plain"
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def reply(self, *scripts: Script) -> StubServer:
        self.replies.extend(scripts)
        return self

    @property
    def last(self) -> Seen:
        return self.requests[-1]

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def echo_auth(status: int, body_key: str = "error") -> Callable[[Seen], Reply]:
    """An error reply that repeats the request's credentials back, as careless servers do."""

    def reply(seen: Seen) -> Reply:
        creds = seen.headers.get("authorization", "") + " " + seen.headers.get("x-api-key", "")
        text = f"bad things happened for {creds.strip()} (Authorization: {creds.strip()})"
        return Reply(status, {body_key: {"message": text, "type": "error"}})

    return reply
