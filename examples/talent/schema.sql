-- Talent example: job postings, candidate profiles and a skills taxonomy.
-- Portable types only (INTEGER, TEXT, REAL); timestamps are ISO-8601 UTC text,
-- e.g. '2026-11-24T08:15:00Z', so they sort and compare correctly as strings.

CREATE TABLE IF NOT EXISTS job_families (
    family_id INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS skills (
    skill_id  INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    category  TEXT NOT NULL,
    parent_id INTEGER NULL REFERENCES skills (skill_id)
);

CREATE TABLE IF NOT EXISTS skill_aliases (
    alias    TEXT PRIMARY KEY,
    skill_id INTEGER NOT NULL REFERENCES skills (skill_id)
);

CREATE TABLE IF NOT EXISTS postings (
    posting_id  INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    company     TEXT,
    location    TEXT,
    family_id   INTEGER REFERENCES job_families (family_id),
    seniority   TEXT,
    description TEXT NOT NULL,
    url         TEXT,
    fetched_at  TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS postings_fetched_at_idx ON postings (fetched_at);

CREATE TABLE IF NOT EXISTS profiles (
    profile_id       INTEGER PRIMARY KEY,
    full_name        TEXT,
    email            TEXT,
    headline         TEXT,
    location         TEXT,
    years_experience INTEGER,
    cv_text          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    source           TEXT NOT NULL DEFAULT 'sample'
);

-- Result tables: empty after generation, filled by the workflows.

CREATE TABLE IF NOT EXISTS posting_skills (
    posting_id     INTEGER NOT NULL REFERENCES postings (posting_id),
    skill          TEXT NOT NULL,
    importance     TEXT,
    weight         INTEGER,
    proficiency    TEXT,
    years_required INTEGER NULL,
    reasoning      TEXT,
    PRIMARY KEY (posting_id, skill)
);

CREATE TABLE IF NOT EXISTS profile_skills (
    profile_id INTEGER NOT NULL REFERENCES profiles (profile_id),
    skill      TEXT NOT NULL,
    confidence REAL,
    evidence   TEXT,
    PRIMARY KEY (profile_id, skill)
);

CREATE TABLE IF NOT EXISTS posting_matches (
    posting_id     INTEGER NOT NULL,
    profile_id     INTEGER NOT NULL,
    rank           INTEGER,
    score          REAL,
    matched_skills TEXT, -- JSON array of skill names
    PRIMARY KEY (posting_id, profile_id)
);
