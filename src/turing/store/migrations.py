"""Schema migrations: a fresh database gets `schema.sql`; an older one gets the missing
migrations in order. Both paths must give the same schema (a test compares them).

Everything, the migrations table included, happens under one lock (PostgreSQL: a
transaction-scoped advisory lock; SQLite: the BEGIN IMMEDIATE write lock), so two
processes migrating a fresh database at once cannot race: the second waits, then finds
the schema migrated and applies nothing."""

from __future__ import annotations

import time

from turing.store.db import Database
from turing.store.queries import migrations, schema_text


def migrate(db: Database, *, fresh_from_schema: bool = True) -> list[int]:
    """Bring the database to the latest version; return the versions applied now."""
    available = migrations(db.dialect)
    with db.tx() as tx:
        tx.x("lock_migrations")  # PostgreSQL: one migrator at a time; SQLite holds the write lock
        tx.x("create_migrations_table")
        done = {row["version"] for row in tx.q("applied_migrations")}
        if not done and fresh_from_schema:
            tx.script(schema_text(db.dialect))
            for version, name, _ in available:
                tx.x("record_migration", version=version, name=name, now=time.time())
            return [v for v, _, _ in available]
        applied = []
        for version, name, sql in available:
            if version in done:
                continue
            tx.script(sql)
            tx.x("record_migration", version=version, name=name, now=time.time())
            applied.append(version)
        return applied


def current_version(db: Database) -> int:
    with db.tx() as tx:
        tx.x("lock_migrations")  # the table is created under the same lock as migrations
        tx.x("create_migrations_table")
        rows = tx.q("applied_migrations")
    return max((r["version"] for r in rows), default=0)


def latest_version(dialect: str) -> int:
    return max((v for v, _, _ in migrations(dialect)), default=0)
