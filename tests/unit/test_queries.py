"""Named SQL: both dialects define the same queries, every name the store uses exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import turing.store.queries as queries_module
from turing.store.queries import (
    DIALECTS,
    migrations,
    queries,
    sql_files,
    sql_text,
    to_paramstyle,
)

STORE_DIR = Path(queries_module.__file__).parent
NAME_LINE = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)
PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")
NAMED_CALLS = {"q", "one", "x", "many"}


def _all_queries_text(dialect: str) -> str:
    """Every queries file of a dialect (queries.sql and queries_*.sql), concatenated."""
    return "\n".join(sql_text(dialect, f) for f in sql_files(dialect, "queries"))


def names_in_text(dialect: str) -> list[str]:
    return NAME_LINE.findall(_all_queries_text(dialect))


def used_query_names() -> dict[str, set[str]]:
    """Query names passed to `tx.q/one/x/many` in src/turing/store/*.py, per file.

    A literal first argument counts directly; a variable counts with every string
    literal assigned to that variable in the module (`query = "a" if b else "c"`).
    """
    used: dict[str, set[str]] = {}
    for path in sorted(STORE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        assigned: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                strings = {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, set()).update(strings)
        found: set[str] = set()
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in NAMED_CALLS
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
            elif isinstance(first, ast.Name):
                found |= assigned.get(first.id, set())
        if found:
            used[path.name] = found
    return used


def test_both_dialects_define_the_same_query_names() -> None:
    sqlite, postgres = set(queries("sqlite")), set(queries("postgres"))
    assert sqlite == postgres, {
        "only in sqlite": sorted(sqlite - postgres),
        "only in postgres": sorted(postgres - sqlite),
    }
    assert len(sqlite) > 10


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_duplicate_query_names(dialect: str) -> None:
    names = names_in_text(dialect)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []
    assert sorted(names) == sorted(queries(dialect))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_name_line_is_well_formed(dialect: str) -> None:
    """A `-- name:` line the loader would not recognise would glue two queries together."""
    loose = re.findall(r"^--\s*name\b.*$", _all_queries_text(dialect), re.MULTILINE)
    assert len(loose) == len(queries(dialect))
    for body in queries(dialect).values():
        assert body.strip(), "every named query has a body"
        assert "-- name" not in body


def test_duplicate_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "-- name: a\nSELECT 1;\n\n-- name: a\nSELECT 2;\n"
    monkeypatch.setattr(queries_module, "sql_text", lambda dialect, filename: text)
    with pytest.raises(ValueError, match="'a' is defined twice"):
        queries.__wrapped__("sqlite")


def test_every_query_name_used_by_the_store_exists() -> None:
    used = used_query_names()
    assert {"store.py", "migrations.py"} <= set(used)
    everything = set().union(*used.values())
    assert {
        "claim_tasks",
        "complete_task",
        "enqueue_tasks",
        "enqueue_tasks_reprocess",
    } <= everything
    for dialect in DIALECTS:
        missing = {f: sorted(names - set(queries(dialect))) for f, names in used.items()}
        assert all(not m for m in missing.values()), (dialect, missing)


def test_both_dialects_take_the_same_parameters() -> None:
    sqlite_text = {n: b for n, b in _raw("sqlite").items()}
    postgres_text = _raw("postgres")
    for name, body in sqlite_text.items():
        assert set(PARAM.findall(body)) == set(PARAM.findall(postgres_text[name])), name


def _raw(dialect: str) -> dict[str, str]:
    parts = NAME_LINE.split(_all_queries_text(dialect))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_postgres_queries_have_no_colon_parameters_left() -> None:
    for name, body in queries("postgres").items():
        assert not PARAM.findall(body), name


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT :a::text", "SELECT %(a)s::text"),
        ("SELECT x::int, y :: bigint FROM t", "SELECT x::int, y :: bigint FROM t"),
        ("SELECT ARRAY[1]::int[], :b::jsonb->>'k'", "SELECT ARRAY[1]::int[], %(b)s::jsonb->>'k'"),
        ("SELECT :a, :a_b2 WHERE c = :c", "SELECT %(a)s, %(a_b2)s WHERE c = %(c)s"),
        ("SELECT 'a%' LIKE :p", "SELECT 'a%%' LIKE %(p)s"),
        ("SELECT 10:30", "SELECT 10:30"),
    ],
)
def test_to_paramstyle_postgres(sql: str, expected: str) -> None:
    assert to_paramstyle("postgres", sql) == expected


def test_to_paramstyle_sqlite_is_unchanged() -> None:
    sql = "SELECT :a, x::int, 'a%'"
    assert to_paramstyle("sqlite", sql) == sql


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrations_are_numbered_from_one_without_gaps(dialect: str) -> None:
    versions = [v for v, _, _ in migrations(dialect)]
    assert versions == list(range(1, len(versions) + 1))


def test_both_dialects_have_the_same_migrations() -> None:
    sqlite = [(v, n) for v, n, _ in migrations("sqlite")]
    postgres = [(v, n) for v, n, _ in migrations("postgres")]
    assert sqlite == postgres
