-- Provider batches (turing.batch): one row per batch, recorded BEFORE the provider is called
-- (status 'submitting', with the idempotency key sent as the batch's metadata), so a worker
-- killed between the provider's create and our record is found again by its key. Items name
-- a task and attempt; a task inside a batch has status 'submitted' (never claimed, never
-- reclaimed) until an ingesting worker takes it back, guarded by the item's state.
CREATE TABLE turing_batches (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    actor              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    provider_batch_id  TEXT,
    idempotency_key    TEXT NOT NULL UNIQUE,
    status             TEXT NOT NULL DEFAULT 'submitting'
                       CHECK (status IN ('submitting', 'submitted', 'ingested', 'expired',
                                         'cancelled', 'failed')),
    provider_status    TEXT,
    requests           INTEGER NOT NULL DEFAULT 0,
    succeeded          INTEGER NOT NULL DEFAULT 0,
    errored            INTEGER NOT NULL DEFAULT 0,
    owner              TEXT NOT NULL,
    error              TEXT,
    budget_hold        TEXT,
    created_at         REAL NOT NULL,
    submitted_at       REAL,
    expires_at         REAL,
    polled_at          REAL,
    finished_at        REAL
);
CREATE INDEX turing_batches_open ON turing_batches (status, id);

-- One request of a batch: `round` counts the re-asks of one attempt (round 1 is the first
-- ask); `answer` keeps what the model said (a re-ask replays it to rebuild the conversation).
CREATE TABLE turing_batch_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id       INTEGER NOT NULL REFERENCES turing_batches (id) ON DELETE CASCADE,
    task_id        INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    round          INTEGER NOT NULL,
    custom_id      TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'submitted'
                   CHECK (state IN ('submitted', 'ingesting', 'done', 'reask', 'returned',
                                    'stale')),
    answer         TEXT,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    since          REAL NOT NULL,
    UNIQUE (batch_id, custom_id)
);
CREATE INDEX turing_batch_items_batch ON turing_batch_items (batch_id, state);
CREATE INDEX turing_batch_items_task ON turing_batch_items (task_id, attempt);

-- A model call answered through a batch names it (its cost is at the batch rate).
ALTER TABLE turing_calls ADD COLUMN batch_id INTEGER;
