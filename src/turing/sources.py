"""Sources find pending work; sinks store validated output.

A `Source` is SQL (one string, or one per dialect) returning the subject key plus the input
fields of every item that still needs the workflow, or a Python callable returning such rows.
A `Sink` is SQL statements (optionally once per item of an output list) or a callable
`fn(tx, output, task)`; it runs inside the transaction that marks the task done, so a
result is stored exactly when its task completes.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from turing.store.db import Tx

Rows = Iterable[Mapping[str, Any]]
DialectSQL = str | Mapping[str, str]


def _for_dialect(sql: DialectSQL, dialect: str, what: str) -> str:
    if isinstance(sql, str):
        return sql
    try:
        return sql[dialect]
    except KeyError:
        raise ValueError(
            f"{what} has no SQL for dialect {dialect!r} (has: {', '.join(sql)})"
        ) from None


FilterOp = Literal["=", "!=", "<", "<=", ">", ">="]
FilterType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string", "maxLength": 200},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


@dataclass(frozen=True)
class SourceFilter:
    """A filter a plan may put on a source: `column op value`, with a typed value.

    The workflow's author declares the column and operator; a plan only supplies the value,
    which is bound as a parameter. So a plan narrows a source without ever carrying SQL.
    Dates compare as ISO text (`2026-11-24`), which sorts correctly against ISO timestamps.
    """

    column: str
    op: FilterOp = "="
    type: FilterType = "string"
    description: str = ""

    def __post_init__(self) -> None:
        if not _COLUMN.match(self.column):
            raise ValueError(f"filter column {self.column!r} must be a plain column name")
        if self.op not in _OPS:
            raise ValueError(f"filter op {self.op!r} must be one of {', '.join(_OPS)}")
        if self.type not in _FILTER_SCHEMAS:
            raise ValueError(
                f"filter type {self.type!r} must be one of {', '.join(_FILTER_SCHEMAS)}"
            )

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the value, with the description a planner reads."""
        out = dict(_FILTER_SCHEMAS[self.type])
        if self.description:
            out["description"] = self.description
        return out

    def matches(self, row: Mapping[str, Any], value: Any) -> bool:
        """The filter applied in Python (for sources that are callables)."""
        have = _json_value(row.get(self.column))
        if have is None:
            return False
        try:
            return bool(_OPS[self.op](have, value))
        except TypeError:
            return False


@dataclass(frozen=True)
class Source:
    """Where pending work comes from; `key` defaults to the workflow's subject key.

    `filters` names the ways a plan may narrow the source (`fetched_since`, ...); the SQL
    source must return the filtered columns.
    """

    sql: DialectSQL | None = None
    fn: Callable[[Tx], Rows] | None = None
    key: str | None = None
    priority: int = 0
    filters: Mapping[str, SourceFilter] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if (self.sql is None) == (self.fn is None):
            raise ValueError("a Source needs exactly one of sql= or fn=")
        for name in self.filters:
            if not _COLUMN.match(name):
                raise ValueError(f"filter name {name!r} must be an identifier")

    def select(
        self, tx: Tx, values: Mapping[str, Any], limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows narrowed by declared filters (`values`: filter name -> value), at most `limit`."""
        unknown = sorted(set(values) - set(self.filters))
        if unknown:
            raise ValueError(
                f"unknown source filter(s) {', '.join(unknown)} "
                f"(declared: {', '.join(self.filters) or 'none'})"
            )
        if self.fn is not None:
            found = [
                dict(r)
                for r in self.fn(tx)
                if all(self.filters[n].matches(r, v) for n, v in values.items())
            ]
            return found[:limit] if limit is not None else found
        sql = self.query(tx.dialect)
        assert sql is not None
        where, params = [], {}
        for index, (name, value) in enumerate(sorted(values.items())):
            flt = self.filters[name]
            where.append(f'turing_source."{flt.column}" {flt.op} :turing_filter_{index}')
            params[f"turing_filter_{index}"] = value
        text = f"SELECT * FROM ({sql}) AS turing_source"
        if where:
            text += " WHERE " + " AND ".join(where)
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        return tx.sql(text, params)

    def query(self, dialect: str) -> str | None:
        return (
            None
            if self.sql is None
            else _for_dialect(self.sql, dialect, "source").strip().rstrip(";")
        )

    def rows(self, tx: Tx, limit: int | None = None) -> list[dict[str, Any]]:
        if self.fn is not None:
            found = [dict(r) for r in self.fn(tx)]
            return found[:limit] if limit is not None else found
        sql = self.query(tx.dialect)
        assert sql is not None
        if limit is not None:
            sql = f"SELECT * FROM ({sql}) AS turing_source LIMIT {int(limit)}"
        return tx.sql(sql)

    def stream(self, db: Any, chunk: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """All rows in chunks, never all in memory at once (a million pending rows is fine)."""
        if self.fn is not None:  # a callable's rows are read before anything is written
            with db.read() as tx:
                found = [dict(r) for r in self.fn(tx)]
            for start in range(0, len(found), chunk):
                yield found[start : start + chunk]
            return
        sql = self.query(db.dialect)
        assert sql is not None
        yield from db.stream(sql, chunk)

    def row_for(self, tx: Tx, key: str, subject: str) -> dict[str, Any] | None:
        """The source's current row for one subject, or None when it no longer returns it
        (`turing retry` re-reads the input this way instead of replaying a stale one)."""
        if self.fn is not None:
            return next((r for r in self.rows(tx) if str(r.get(key)) == subject), None)
        if not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise ValueError(f"source key {key!r} is not a plain column name")
        found = tx.sql(
            f"SELECT * FROM ({self.query(tx.dialect)}) AS turing_source "
            f"WHERE CAST(turing_source.{key} AS TEXT) = :subject",
            {"subject": subject},
        )
        return found[0] if found else None

    def count(self, tx: Tx) -> int:
        if self.fn is not None:
            return len(self.rows(tx))
        rows = tx.sql(f"SELECT COUNT(*) AS n FROM ({self.query(tx.dialect)}) AS turing_source")
        return int(rows[0]["n"])


@dataclass(frozen=True)
class SinkSQL:
    """One statement; with `for_each`, run once per element of that output list."""

    sql: DialectSQL
    for_each: str | None = None


@dataclass(frozen=True)
class Sink:
    statements: tuple[SinkSQL, ...] = ()
    fn: Callable[[Tx, dict[str, Any], Mapping[str, Any]], None] | None = None
    description: str = field(default="", compare=False)

    @classmethod
    def sql(cls, *statements: str | SinkSQL, for_each: str | None = None) -> Sink:
        """`Sink.sql("DELETE ...", "INSERT ...", for_each="skills")`: plain strings after the
        first take `for_each`; the first runs once (typically clearing earlier results)."""
        out: list[SinkSQL] = []
        for i, st in enumerate(statements):
            if isinstance(st, SinkSQL):
                out.append(st)
            else:
                out.append(SinkSQL(st, for_each if (i > 0 or len(statements) == 1) else None))
        return cls(tuple(out))

    def problems(self, output: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Parameters of the SQL statements that the output contract cannot supply, checked
        when the workflow loads (a renamed field must not cost every task its model calls
        before the sink fails). `output` is the contract's top-level properties; a sink of
        a contract that declares none is not checked."""
        if not output:
            return []
        found = []
        for st in self.statements:
            given = {"subject", *output}
            if st.for_each is not None:
                items = output.get(st.for_each)
                if items is None or items.get("type") not in (None, "array"):
                    found.append(f"for_each={st.for_each!r} is not an array field of the output")
                    continue
                element = items.get("items", {}) if isinstance(items, Mapping) else {}
                given |= {"index", "value", *element.get("properties", {})}
            texts = st.sql.values() if isinstance(st.sql, Mapping) else [st.sql]
            for text in texts:
                for name in sorted(set(_PARAM.findall(text)) - given):
                    found.append(
                        f"parameter :{name} of sink statement {_short(text)!r} is not in the "
                        f"output contract (it has: {', '.join(sorted(given))})"
                    )
        return found

    def write(self, tx: Tx, output: dict[str, Any], task: Mapping[str, Any]) -> None:
        """Store one output; raises whatever the database or callable raises."""
        if self.fn is not None:
            self.fn(tx, output, task)
        top = {k: _param(v) for k, v in output.items()}
        top["subject"] = task.get("subject")
        for st in self.statements:
            sql = _for_dialect(st.sql, tx.dialect, "sink")
            if st.for_each is None:
                tx.sql(sql, top)
                continue
            items = output.get(st.for_each)
            if not isinstance(items, list):
                raise ValueError(f"sink for_each={st.for_each!r}: output has no list there")
            for index, item in enumerate(items):
                own = (
                    {k: _param(v) for k, v in item.items()}
                    if isinstance(item, dict)
                    else {"value": _param(item)}
                )
                tx.sql(sql, {**top, **own, "index": index})


_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")  # as turing.store.queries reads them


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= 60 else flat[:57] + "..."


def _param(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def subject_of(row: Mapping[str, Any], key: str) -> str:
    try:
        return str(row[key])
    except KeyError:
        raise ValueError(
            f"source row has no key column {key!r} (columns: {', '.join(row)})"
        ) from None


def input_of(row: Mapping[str, Any], fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The row restricted to the input contract's fields (all of it if none are declared).

    Databases hand JSON aggregates back as text (SQLite's json_group_array); where the
    contract wants an object or array, such text is decoded. PostgreSQL's NUMERIC, DATE,
    TIMESTAMP and UUID values become the JSON numbers and strings SQLite would give.
    """
    out = dict(row) if not fields else {k: v for k, v in row.items() if k in fields}
    for key, raw in out.items():
        schema = fields.get(key, {})
        value = out[key] = _json_value(raw)
        if isinstance(value, str) and schema.get("type") in ("array", "object"):
            with contextlib.suppress(ValueError):  # else input validation says what is wrong
                out[key] = json.loads(value)
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
