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


@cache
def queries(dialect: str) -> dict[str, str]:
    """Every named query of a dialect, in that dialect's parameter style."""
    text = sql_text(dialect, "queries.sql")
    parts = _NAME.split(text)
    named: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in named:
            raise ValueError(f"{dialect}/queries.sql defines {name!r} twice")
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
