"""Connections and transactions for both dialects behind one small interface.

`Database.tx()` is a write transaction (SQLite: `BEGIN IMMEDIATE`, so claims and completions
are serialised by the database, not by the process; PostgreSQL: a pooled connection in a
transaction). `Tx` runs named queries (`q`, `one`, `x`) and user SQL written with `:name`
parameters (`sql`), and offers savepoints so one failing sink does not undo its neighbours.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from turing.errors import ConfigError, StoreError
from turing.store.queries import queries, to_paramstyle

Row = dict[str, Any]


class Tx(Protocol):
    dialect: str

    def q(self, query: str, /, **params: Any) -> list[Row]: ...
    def one(self, query: str, /, **params: Any) -> Row | None: ...
    def x(self, query: str, /, **params: Any) -> int: ...
    def many(self, query: str, rows: Sequence[Mapping[str, Any]]) -> int: ...
    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...
    def script(self, text: str) -> None: ...
    def savepoint(self) -> Any: ...
    def pipeline(self) -> Any: ...


class Database(Protocol):
    dialect: str
    url: str

    def tx(self) -> Any: ...
    def read(self) -> Any: ...
    def stream(self, sql: str, chunk: int = 5000) -> Iterator[list[Row]]: ...
    def close(self) -> None: ...


def connect(url: str, *, pool_size: int = 4) -> Database:
    """Open a database from its URL: `sqlite:///path.db` or `postgresql://...[?schema=x]`."""
    if url.startswith("sqlite://"):
        return SQLiteDatabase(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, pool_size=pool_size)
    raise ConfigError(
        f"unsupported database URL {url!r}: use sqlite:///file.db or postgresql://..."
    )


def split_statements(text: str) -> list[str]:
    """Statements of a schema or migration file (no procedural bodies in these files)."""
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open")


def is_transient(exc: BaseException) -> bool:
    """Whether a driver error is the database's passing fault (connection lost, server
    restarting, deadlock or lock timeout, SQLite busy) rather than a bad statement: the
    same work may succeed when tried again."""
    if isinstance(exc, StoreError):
        return exc.transient
    if isinstance(exc, sqlite3.OperationalError):
        return any(word in str(exc).lower() for word in _SQLITE_TRANSIENT)
    module = type(exc).__module__
    if module.startswith(("psycopg", "psycopg_pool")):
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return False


@contextmanager
def _faults_as_store_errors(dialect: str) -> Iterator[None]:
    """A transient driver error leaving a transaction becomes a `StoreError`, so callers
    (and history) can tell a database fault from a model's or a sink's."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise StoreError(f"{dialect}: {type(exc).__name__}: {exc}".strip()) from exc
        raise


# --------------------------------------------------------------------------- SQLite
class _SQLiteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._queries = queries("sqlite")
        self._depth = 0

    @staticmethod
    def _params(params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: json.dumps(v) if isinstance(v, list | tuple | dict) else v for k, v in params.items()
        }

    def _run(self, sql: str, params: Mapping[str, Any]) -> sqlite3.Cursor:
        return self.conn.execute(sql, self._params(params))

    def q(self, query: str, /, **params: Any) -> list[Row]:
        cur = self._run(self._queries[query], params)
        cols = [d[0] for d in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def one(self, query: str, /, **params: Any) -> Row | None:
        rows = self.q(query, **params)
        return rows[0] if rows else None

    def x(self, query: str, /, **params: Any) -> int:
        return self._run(self._queries[query], params).rowcount

    def many(self, query: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """One named statement over many parameter sets; returns rows affected in total."""
        cur = self.conn.executemany(self._queries[query], [self._params(r) for r in rows])
        return cur.rowcount

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        cur = self._run(text, params or {})
        if cur.description is None:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def script(self, text: str) -> None:
        for statement in split_statements(text):
            self.conn.execute(statement)

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """SQLite runs in-process: nothing to batch."""
        yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._depth += 1
        name = f"sp{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1


def _use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to WAL. Several processes opening a new file at once can get "database is
    locked" here without SQLite calling the busy handler, so wait and retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class SQLiteDatabase:
    """One connection per process, WAL, a busy timeout; writers take the lock up front."""

    dialect = "sqlite"

    def __init__(self, url: str, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        path = url.removeprefix("sqlite://").removeprefix("/")
        if not path:
            raise ConfigError(f"database URL {url!r} names no file")
        self.path = path if path == ":memory:" else str(Path(path))
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self._conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        if self.path != ":memory:":
            _use_wal(self._conn, busy_timeout_ms / 1000)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._lock = threading.RLock()

    @contextmanager
    def tx(self) -> Iterator[_SQLiteTx]:
        with self._lock, _faults_as_store_errors("sqlite"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(self._conn)
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_SQLiteTx]:
        with self._lock, _faults_as_store_errors("sqlite"):
            self._conn.execute("BEGIN")
            try:
                yield _SQLiteTx(self._conn)
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")

    def stream(self, sql: str, chunk: int = 5000) -> Iterator[list[Row]]:
        """Rows of a query in chunks, from a connection of their own: the reader does not
        hold the writer's lock, so the chunks can be written elsewhere as they come (WAL)."""
        if self.path == ":memory:":
            with self.read() as tx:
                rows = tx.sql(sql)
            for start in range(0, len(rows), chunk):
                yield rows[start : start + chunk]
            return
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            cur = conn.execute(sql)
            cols = [d[0] for d in cur.description or ()]
            while batch := cur.fetchmany(chunk):
                yield [dict(zip(cols, row, strict=True)) for row in batch]
        finally:
            conn.close()

    def close(self) -> None:
        self._conn.close()


# ------------------------------------------------------------------------ PostgreSQL
class _PgTx:
    dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._queries = queries("postgres")

    def _run(self, sql: str, params: Mapping[str, Any]) -> Any:
        return self.conn.execute(sql, dict(params) if params else None)

    def q(self, query: str, /, **params: Any) -> list[Row]:
        return _rows(self._run(self._queries[query], params))

    def one(self, query: str, /, **params: Any) -> Row | None:
        rows = self.q(query, **params)
        return rows[0] if rows else None

    def x(self, query: str, /, **params: Any) -> int:
        return int(self._run(self._queries[query], params).rowcount)

    def many(self, query: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """One named statement over many parameter sets (pipelined); rows affected in total."""
        with self.conn.cursor() as cur:
            cur.executemany(self._queries[query], [dict(r) for r in rows], returning=False)
            return int(cur.rowcount)

    def sql(self, text: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        converted = to_paramstyle("postgres", text) if params else text
        return _rows(self._run(converted, _pg_params(params or {})))

    def script(self, text: str) -> None:
        for statement in split_statements(text):
            self.conn.execute(statement)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Send statements without waiting for each result (errors surface on exit)."""
        with self.conn.pipeline():
            yield


def _rows(cur: Any) -> list[Row]:
    """A statement's rows. In pipeline mode `description` is unknown until the result is
    fetched, so a statement that returns rows (`RETURNING id`) is fetched by asking for
    them: fetching syncs the pipeline. Only a statement known to return nothing gives []."""
    if cur.description is None and not cur.connection.pgconn.pipeline_status:
        return []
    try:
        return list(cur.fetchall())
    except Exception as exc:  # psycopg: "the last operation didn't produce records/a result"
        if type(exc).__name__ == "ProgrammingError" and "didn't produce" in str(exc):
            return []
        raise


def _pg_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}


class PostgresDatabase:
    """A psycopg 3 connection pool; `?schema=NAME` in the URL sets (and creates) the schema."""

    dialect = "postgres"

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            where = url.rsplit("@", 1)[-1]
            raise ConfigError(
                f"{where}: PostgreSQL needs the extra: pip install 'turing[postgres]'"
            ) from exc
        self.url = url
        conninfo, schema = _split_schema(url)
        self.schema = schema
        if schema:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
                raise ConfigError(f"schema name {schema!r} must be lower_snake_case")
            try:
                # IF NOT EXISTS still races when two processes create the schema at once
                with (
                    psycopg.connect(conninfo, autocommit=True) as conn,
                    contextlib.suppress(psycopg.errors.UniqueViolation),
                ):
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            except psycopg.Error as exc:
                raise ConfigError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if schema:
            kwargs["options"] = f"-c search_path={schema}"
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=pool_size, kwargs=kwargs, open=False, timeout=30
        )
        try:
            self._pool.open(wait=True, timeout=15)
        except Exception as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL at {_redact(conninfo)}: {exc}"
            ) from exc

    @contextmanager
    def tx(self) -> Iterator[_PgTx]:
        with (
            _faults_as_store_errors("postgres"),
            self._pool.connection() as conn,
            conn.transaction(),
        ):
            yield _PgTx(conn)

    read = tx

    def stream(self, sql: str, chunk: int = 5000) -> Iterator[list[Row]]:
        """Rows of a query in chunks through a server-side cursor on a pooled connection."""
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="turing_stream") as cur,
        ):
            cur.execute(sql)
            while batch := cur.fetchmany(chunk):
                yield cast(list[Row], batch)  # the pool's connections make dict rows

    def close(self) -> None:
        self._pool.close()


def _split_schema(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[0]
    rest = urlencode({k: v[0] for k, v in query.items()})
    return urlunsplit(parts._replace(query=rest)), schema


def _redact(conninfo: str) -> str:
    parts = urlsplit(conninfo)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return conninfo
