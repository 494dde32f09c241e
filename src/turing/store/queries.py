"""Named SQL: `-- name: X` blocks in `sql/<dialect>/queries.sql`, loaded once per dialect."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# `:name` parameters, but not PostgreSQL casts (`::text`) or `:=`.
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")

DIALECTS = ("sqlite", "postgres")


def sql_text(dialect: str, filename: str) -> str:
    return resources.files("turing.store").joinpath("sql", dialect, filename).read_text("utf-8")


def sql_files(dialect: str, stem: str) -> list[str]:
    """`stem.sql` then `stem_*.sql` (one file per concept: limits, schedules, ...), sorted."""
    folder = resources.files("turing.store").joinpath("sql", dialect)
    extra = sorted(
        e.name
        for e in folder.iterdir()
        if e.name.startswith(f"{stem}_") and e.name.endswith(".sql")
    )
    return [f"{stem}.sql", *extra]


def schema_text(dialect: str) -> str:
    """The whole current schema for a fresh database."""
    return "\n\n".join(sql_text(dialect, name) for name in sql_files(dialect, "schema"))


@cache
def queries(dialect: str) -> dict[str, str]:
    """Every named query of a dialect, in that dialect's parameter style."""
    named: dict[str, str] = {}
    for filename in sql_files(dialect, "queries"):
        parts = _NAME.split(sql_text(dialect, filename))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in named:
                raise ValueError(f"{dialect}: query {name!r} is defined twice ({filename})")
            named[name] = to_paramstyle(dialect, body.strip())
    return named


def to_paramstyle(dialect: str, sql: str) -> str:
    """`:name` -> `%(name)s` for psycopg (literal `%` doubled); SQLite takes `:name` as is."""
    if dialect == "sqlite":
        return sql
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of each file in `sql/<dialect>/migrations`, in order."""
    folder = resources.files("turing.store").joinpath("sql", dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found)
