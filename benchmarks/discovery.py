"""Discovery at scale: 1,000,000 postings, half of them pending (no skills yet).

Measures, on SQLite and PostgreSQL: the count-and-sample query (pending count plus the first
1,000 pending keys; target <= 50 ms), enqueuing those 1,000, and discovering + enqueuing all
500,000 pending postings (tasks/s). Two ways to say "pending" are measured, because the
query the user writes decides the cost: an anti-join against the result table (every
posting is probed) and a status column with a partial index (only pending rows are read).
Run: `.venv/bin/python benchmarks/discovery.py [sqlite|postgres]`.
"""

from __future__ import annotations

from _common import PG_DSN, backends, best_of, database, timed
from turing.sources import Source
from turing.store.store import Store

N = 1_000_000
SAMPLE = 1_000
ANTI_JOIN = Source(
    sql="SELECT p.posting_id, p.title FROM postings p WHERE NOT EXISTS "
    "(SELECT 1 FROM posting_skills s WHERE s.posting_id = p.posting_id)",
    key="posting_id",
)
STATUS = Source(
    sql="SELECT posting_id, title FROM postings WHERE skills_at IS NULL", key="posting_id"
)
SOURCES = {"anti-join (NOT EXISTS)": ANTI_JOIN, "status column + partial index": STATUS}


def populate(store: Store) -> None:
    with store.db.tx() as tx:
        tx.sql(
            "CREATE TABLE postings (posting_id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
            " skills_at TEXT)"
        )
        tx.sql(
            "CREATE TABLE posting_skills (posting_id INTEGER NOT NULL, skill TEXT NOT NULL,"
            " PRIMARY KEY (posting_id, skill))"
        )
        if store.dialect == "postgres":
            tx.sql(
                "INSERT INTO postings SELECT g, 'Engineer ' || g,"
                f" CASE WHEN g % 2 = 0 THEN 'done' END FROM generate_series(1, {N}) g"
            )
            tx.sql(
                f"INSERT INTO posting_skills SELECT g, 'Python' FROM generate_series(2, {N}, 2) g"
            )
        else:
            tx.sql(
                f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {N}) "
                "INSERT INTO postings SELECT i, 'Engineer ' || i,"
                " CASE WHEN i % 2 = 0 THEN 'done' END FROM g"
            )
            tx.sql(
                "INSERT INTO posting_skills SELECT posting_id, 'Python' FROM postings"
                " WHERE posting_id % 2 = 0"
            )
        tx.sql("CREATE INDEX postings_pending ON postings (posting_id) WHERE skills_at IS NULL")
    if store.dialect == "postgres":
        import psycopg  # VACUUM cannot run in a transaction; it also sets the visibility map

        schema = getattr(store.db, "schema", "public")
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {schema}.postings")
            conn.execute(f"VACUUM ANALYZE {schema}.posting_skills")
    else:
        with store.db.tx() as tx:
            tx.sql("ANALYZE")


def count_and_sample(store: Store, source: Source) -> tuple[int, list[dict[str, object]]]:
    with store.db.read() as tx:
        return source.count(tx), source.rows(tx, SAMPLE)


def main() -> None:
    print(f"discovery: {N:,} postings, {N // 2:,} pending")
    for kind in backends():
        with database(kind) as (_url, db):
            store = Store(db)
            _, secs = timed(lambda s=store: populate(s))
            print(f"  {kind} (populated in {secs:.1f}s)")
            for label, source in SOURCES.items():
                (count, sample), _ = timed(lambda s=store, src=source: count_and_sample(s, src))
                assert count == N // 2 and len(sample) == SAMPLE, (label, count, len(sample))
                q = best_of(5, lambda s=store, src=source: count_and_sample(s, src))
                verdict = "met" if q <= 0.050 else "not met"
                print(
                    f"    count-and-sample ({label}): {q * 1000:6.1f} ms"
                    f"  (target <= 50 ms: {verdict})"
                )
            sample = count_and_sample(store, STATUS)[1]
            items = [(str(r["posting_id"]), r) for r in sample]
            added, enq = timed(lambda s=store, i=items: s.enqueue("job_skills", 1, i))
            assert added == SAMPLE

            def everything(s: Store = store) -> int:
                with s.db.read() as tx:
                    rows = STATUS.rows(tx)
                return s.enqueue("job_skills", 1, ((str(r["posting_id"]), r) for r in rows))

            added_all, all_s = timed(everything)
            assert added_all == N // 2 - SAMPLE
            again, again_s = timed(everything)
            print(f"    enqueue the first {SAMPLE:,}: {enq * 1000:.1f} ms")
            print(
                f"    discover + enqueue all {N // 2:,}: {all_s:.2f} s"
                f" = {N // 2 / all_s:,.0f} tasks/s"
            )
            print(f"    discover again (idempotent, {again} new): {again_s:.2f} s")


if __name__ == "__main__":
    main()
