"""KeepAliveTransport (the Ollama provider's HTTP/1.1 transport) against raw scripted servers:
bodies by length, chunked and until close, keep-alive reuse, a stale idle connection
replaced once, 1xx skipped, and httpx's errors for refused connections, timeouts and
servers that hang up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from turing.providers._transport import KeepAliveTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def run(handler: Handler, scenario: Callable[[str], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await scenario(f"http://127.0.0.1:{port}")
        finally:
            server.close()

    return asyncio.run(main())


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_keep_alive_reuses_one_connection_and_sends_the_body() -> None:
    seen: list[tuple[bytes, bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            seen.append((head, body))
            writer.write(ok(b'{"echo": %s}' % body, b"Content-Type: application/json\r\n"))
            await writer.drain()
        writer.close()

    async def scenario(url: str) -> list[Any]:
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport) as client:
            out = []
            for i in range(3):
                r = await client.post("/api/chat", json={"n": i})
                out.append((r.status_code, r.json(), r.headers["content-type"]))
            return [out, transport.opened]

    out, opened = run(handler, scenario)
    assert out == [(200, {"echo": {"n": i}}, "application/json") for i in range(3)]
    assert opened == 1 and connections == 1
    head, body = seen[0]
    assert head.startswith(b"POST /api/chat HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head.lower()
    assert b"content-length: %d" % len(body) in head.lower()


def test_chunked_and_until_close_bodies_and_informational_answers() -> None:
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nuntil the end",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
            if b"close" in answer:
                break
        writer.close()

    async def scenario(url: str) -> list[Any]:
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport) as client:
            first = await client.post("/a", content=b"x")
            second = await client.post("/b", content=b"y")
            third = await client.get("/c")  # the server closed: a new connection
            return [first.text, second.status_code, second.text, third.status_code]

    calls = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await handler(reader, writer)
        else:
            await read_request(reader)
            writer.write(ok(b"fresh"))
            await writer.drain()
            writer.close()

    assert run(counting, scenario) == ["hello world", 201, "until the end", 200]


@pytest.mark.parametrize("noticed", [True, False], ids=["eof-seen", "eof-unseen"])
def test_a_stale_idle_connection_is_replaced_once(
    noticed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether or not the hang-up was noticed before the connection was taken again."""
    if not noticed:
        monkeypatch.setattr("turing.providers._transport._Conn.usable", lambda *a: True)
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(ok(b"answer"))  # keep-alive promised, then the server hangs up
        await writer.drain()
        writer.close()

    async def scenario(url: str) -> list[Any]:
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport) as client:
            first = await client.post("/", content=b"1")
            await asyncio.sleep(0.05)
            second = await client.post("/", content=b"2")
            return [first.text, second.text, transport.opened]

    assert run(handler, scenario) == ["answer", "answer", 2]
    assert connections == 2


def test_errors_are_httpx_errors() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def post(url: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=KeepAliveTransport(), **kw) as client:
            return await client.post(url + "/", content=b"x")

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        run(hang_up, post)
    with pytest.raises(httpx.ReadTimeout):
        run(silent, lambda url: post(url, timeout=0.2))

    async def refused() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await post(f"http://127.0.0.1:{port}")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(refused())


def test_a_cancelled_call_does_not_return_its_connection() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            await asyncio.sleep(0.3)
            writer.write(ok(b"late"))
            await writer.drain()

    async def scenario(url: str) -> list[Any]:
        transport = KeepAliveTransport()
        async with httpx.AsyncClient(base_url=url, transport=transport) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await client.post("/", content=b"1")
            answer = await client.post("/", content=b"2")  # not the late answer to call 1
            return [answer.text, transport.opened]

    assert run(slow, scenario) == ["late", 2]
