"""`schema.sql` and the migrations, applied one by one, give the same database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from integration.conftest import Backend
from turing.store import Store
from turing.store.db import Database, Tx, connect
from turing.store.migrations import current_version, latest_version, migrate
from turing.store.queries import migrations


@contextmanager
def database(url: str) -> Iterator[Database]:
    db = connect(url)
    try:
        yield db
    finally:
        db.close()


def _ws(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql).strip()


def _sqlite_schema(tx: Tx) -> dict[str, Any]:
    objects = tx.sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    )
    out: dict[str, Any] = {"objects": [{**o, "sql": _ws(o["sql"])} for o in objects]}
    for table in [o["name"] for o in objects if o["type"] == "table"]:
        out[f"{table}.columns"] = tx.sql(f"PRAGMA table_info('{table}')")
        indexes = tx.sql(f"PRAGMA index_list('{table}')")
        out[f"{table}.indexes"] = sorted(indexes, key=lambda r: r["name"])
        for index in indexes:
            out[f"{table}.{index['name']}"] = tx.sql(f"PRAGMA index_xinfo('{index['name']}')")
        out[f"{table}.fks"] = tx.sql(f"PRAGMA foreign_key_list('{table}')")
    return out


def _pg_schema(tx: Tx) -> dict[str, Any]:
    columns = tx.sql(
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
        "column_default, is_identity, identity_generation, character_maximum_length, "
        "numeric_precision FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    indexes = tx.sql(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY tablename, indexname"
    )
    constraints = tx.sql(
        "SELECT rel.relname AS table_name, con.conname, con.contype, "
        "pg_get_constraintdef(con.oid) AS definition "
        "FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid "
        "JOIN pg_namespace ns ON ns.oid = rel.relnamespace "
        "WHERE ns.nspname = current_schema() ORDER BY rel.relname, con.conname"
    )
    [schema] = tx.sql("SELECT current_schema() AS s")
    for index in indexes:  # the definitions name the schema, which differs by design
        index["indexdef"] = index["indexdef"].replace(f"{schema['s']}.", "")
    return {"columns": columns, "indexes": indexes, "constraints": constraints}


def schema_of(db: Database) -> dict[str, Any]:
    with db.read() as tx:
        return _sqlite_schema(tx) if db.dialect == "sqlite" else _pg_schema(tx)


def test_schema_sql_equals_migrations_applied_one_by_one(backend: Backend) -> None:
    with database(backend.url("fresh")) as fresh, database(backend.url("stepwise")) as stepwise:
        available = [v for v, _, _ in migrations(fresh.dialect)]
        assert available, "there is at least the initial migration"
        assert available == sorted(set(available))
        assert migrate(fresh, fresh_from_schema=True) == available
        assert migrate(stepwise, fresh_from_schema=False) == available
        built, migrated = schema_of(fresh), schema_of(stepwise)
        assert built == migrated
        assert "turing_tasks" in repr(built) and "turing_tasks_one_open" in repr(built)
        assert current_version(fresh) == current_version(stepwise) == latest_version(fresh.dialect)


def test_the_comparison_sees_a_difference(backend: Backend) -> None:
    """Guard against a vacuous comparison: one extra index or column is noticed."""
    with database(backend.url("a")) as a, database(backend.url("b")) as b:
        migrate(a)
        migrate(b)
        assert schema_of(a) == schema_of(b)
        with b.tx() as tx:
            tx.sql("CREATE INDEX turing_tasks_extra ON turing_tasks (subject)")
        assert schema_of(a) != schema_of(b)
        with a.tx() as tx:
            tx.sql("CREATE INDEX turing_tasks_extra ON turing_tasks (workflow)")
        assert schema_of(a) != schema_of(b)


def test_migrating_twice_applies_nothing(backend: Backend) -> None:
    with database(backend.url()) as db:
        assert migrate(db) != []
        before = schema_of(db)
        assert migrate(db) == []
        assert migrate(db, fresh_from_schema=False) == []
        assert schema_of(db) == before
    # opening a store migrates automatically, and again applies nothing
    store = Store(connect(backend.url()))
    try:
        assert migrate(store.db) == []
    finally:
        store.close()


def test_upgrade_from_each_older_version_reaches_the_same_schema(backend: Backend) -> None:
    """A database stopped at version k, then upgraded, equals a fresh one (for every k)."""
    with database(backend.url("reference")) as reference:
        migrate(reference)
        expected = schema_of(reference)
        available = migrations(reference.dialect)
    for k in range(1, len(available)):
        with database(backend.url(f"at{k}")) as db:
            with db.tx() as tx:
                tx.x("create_migrations_table")
                for version, name, sql in available[:k]:
                    tx.script(sql)
                    tx.x("record_migration", version=version, name=name, now=0.0)
            applied = migrate(db)
            assert applied == [v for v, _, _ in available[k:]]
            assert schema_of(db) == expected
