"""A small HTTP/1.1 keep-alive transport for httpx, for plain-HTTP model servers.

Why: httpcore's connection pool re-examines every pooled connection on every request and
every response (and counts idle ones in a loop inside that loop), which with 32 calls in
flight cost about a millisecond of CPU per call, most of a client's CPU on a 100 ms call.
This transport keeps idle connections per origin on a stack (the most recently used first),
looks at only the connection it takes, and parses responses itself over asyncio streams.

Scope: `http://` only (anything else goes to httpx's own transport), whole responses (the
body is read before the response is returned: the callers here never stream), HTTP/1.1 with
Content-Length, chunked or read-until-close bodies. Errors are httpx's (ConnectError,
ConnectTimeout, ReadTimeout, WriteTimeout, RemoteProtocolError, ReadError, WriteError), so
callers handle them as they would with httpx's transport. A connection that was idle and turns
out to be closed by the server before any byte of the answer arrived is replaced once by a
fresh one (the request never reached a live server), as browsers and urllib3 do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

MAX_HEADER_BYTES = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, expiry: float) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and now - self.idle_since < expiry
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _Body(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._data:
            yield self._data


@dataclass(frozen=True)
class Answer:
    """A whole HTTP response: status, reason, raw headers in order, the (encoded) body."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.strip().lower() == wanted), None)


class _Stale(Exception):
    """A reused connection was closed by the server before it answered anything."""


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    value: Any = request.extensions.get("timeout") or {}
    return {k: value.get(k) for k in ("connect", "read", "write")}


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """httpx transport: HTTP/1.1 keep-alive over asyncio streams with an O(1) pool."""

    def __init__(self, *, keepalive_expiry: float = 5.0, max_idle: int = 256) -> None:
        self.keepalive_expiry = keepalive_expiry
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._fallback: httpx.AsyncHTTPTransport | None = None
        self.opened = 0  # connections opened over the transport's life (tests, benchmarks)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            if self._fallback is None:  # a connection per call in flight, as over http
                limits = httpx.Limits(max_keepalive_connections=256, max_connections=None)
                self._fallback = httpx.AsyncHTTPTransport(limits=limits)
            return await self._fallback.handle_async_request(request)
        body = await request.aread()
        timeouts = _timeouts(request)
        close = request.headers.get("connection", "").lower() == "close"
        try:
            answer = await self.send(
                url.host,
                url.port or 80,
                self._head(request, len(body)) + body,
                head_only=request.method == "HEAD",
                close=close,
                **timeouts,
            )
        except httpx.RequestError as exc:
            exc.request = request
            raise
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_Body(answer.body),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
            request=request,
        )

    async def send(
        self,
        host: str,
        port: int,
        data: bytes,
        *,
        head_only: bool = False,
        close: bool = False,
        connect: float | None = None,
        read: float | None = None,
        write: float | None = None,
    ) -> Answer:
        """Send one whole request (`data`: request line, headers, body) on a kept-alive
        connection to host:port, or a new one; the whole answer. Raises httpx's errors."""
        key = (host, port)
        conn = self._take(key)
        if conn is not None:
            try:
                return await self._exchange(conn, key, data, head_only, close, write, read, True)
            except _Stale:
                pass
        conn = await self._open(key, connect)
        try:
            return await self._exchange(conn, key, data, head_only, close, write, read, False)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response."
            ) from None

    @staticmethod
    def _head(request: httpx.Request, length: int) -> bytes:
        url = request.url
        lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), url.raw_path)]
        has_length = False
        for name, value in request.headers.raw:
            lower = name.lower()
            if lower == b"transfer-encoding":  # the body is sent whole, with its length
                continue
            if lower == b"content-length":
                has_length = True
                lines.append(name + b": %d" % length)
            else:
                lines.append(name + b": " + value)
        if not has_length and (length or request.method not in ("GET", "HEAD")):
            lines.append(b"Content-Length: %d" % length)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        stack = self._idle.get(key)
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            if conn.usable(now, self.keepalive_expiry):
                return conn
            conn.close()
        return None

    def _give_back(self, key: tuple[str, int], conn: _Conn) -> None:
        stack = self._idle.setdefault(key, [])
        if len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        stack.append(conn)

    async def _open(self, key: tuple[str, int], timeout: float | None) -> _Conn:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    key[0], key[1], limit=MAX_HEADER_BYTES
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        self.opened += 1
        return _Conn(reader, writer)

    async def _exchange(  # noqa: PLR0917 (hot path: positional)
        self,
        conn: _Conn,
        key: tuple[str, int],
        data: bytes,
        head_only: bool,
        close: bool,
        write: float | None,
        read: float | None,
        reused: bool,
    ) -> Answer:
        keep = False
        try:
            conn.writer.write(data)
            try:
                async with asyncio.timeout(write):
                    await conn.writer.drain()
            except TimeoutError:
                raise httpx.WriteTimeout("writing the request timed out") from None
            except OSError as exc:
                if reused:
                    raise _Stale from None
                raise httpx.WriteError(str(exc) or type(exc).__name__) from None
            try:
                async with asyncio.timeout(read):
                    answer, keep = await self._read(conn, head_only, reused)
            except TimeoutError:
                raise httpx.ReadTimeout("reading the response timed out") from None
            keep = keep and not close
        finally:
            if keep:
                self._give_back(key, conn)
            else:
                conn.close()
        return answer

    async def _read(self, conn: _Conn, head_only: bool, reused: bool) -> tuple[Answer, bool]:
        reader = conn.reader
        while True:  # skip informational (1xx) answers
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if reused and not exc.partial:
                    raise _Stale from None
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                ) from None
            except asyncio.LimitOverrunError:
                raise httpx.RemoteProtocolError("response headers too long") from None
            except OSError as exc:
                if reused:
                    raise _Stale from None
                raise httpx.ReadError(str(exc) or type(exc).__name__) from None
            lines = head[:-4].split(b"\r\n")
            status_line = lines[0].split(b" ", 2)
            try:
                if not status_line[0].startswith(b"HTTP/1.") or len(status_line) < 2:
                    raise ValueError
                status = int(status_line[1])
            except ValueError:
                raise httpx.RemoteProtocolError(
                    f"malformed status line {lines[0][:100]!r}"
                ) from None
            if status >= 200 or status == 101:
                break
        reason = status_line[2] if len(status_line) > 2 else b""
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        close = status_line[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise httpx.RemoteProtocolError(f"malformed header {line[:100]!r}")
            value = value.strip()
            headers.append((name, value))
            lower = name.strip().lower()
            if lower == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise httpx.RemoteProtocolError(f"bad Content-Length {value[:40]!r}") from None
            elif lower == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif lower == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                close = b"close" in tokens or (close and b"keep-alive" not in tokens)
        try:
            if head_only or status in _NO_BODY_STATUS or status < 200:
                body = b""
            elif chunked:
                body = await self._chunks(reader)
            elif length is not None:
                body = await reader.readexactly(length)
            else:
                body, close = await reader.read(), True
        except asyncio.IncompleteReadError:
            raise httpx.RemoteProtocolError(
                "Server disconnected in the middle of the response body."
            ) from None
        except (OSError, ValueError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from None
        return Answer(status, reason, headers, body), not close

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")

    async def aclose(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()
            self._fallback = None
