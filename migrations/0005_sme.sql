-- Cluster settings set with PUT /_cluster/settings "persistent" (transient ones live in memory),
-- stored as Elasticsearch keeps them: flat names, string values.
CREATE TABLE cluster_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Background tasks (/_sme/async_requests): an owned, always-stored search. Its result rows and
-- frame are the search's (`searches`, `search_rows`); this row holds what the owner sees:
-- its state (guarded transitions, `WHERE state IN (...)`), its times and its request.
CREATE TABLE background_tasks (
    id            TEXT PRIMARY KEY REFERENCES searches (id) ON DELETE CASCADE,
    owner         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'COMPLETED', 'STOPPED', 'FAILED')),
    created_ms    INTEGER NOT NULL,
    started_ms    INTEGER,
    finished_ms   INTEGER,
    keep_alive_ms INTEGER NOT NULL,             -- kept this long after finished_ms
    partial       INTEGER NOT NULL DEFAULT 0,
    row_count     INTEGER NOT NULL DEFAULT 0,
    progress      REAL NOT NULL DEFAULT 0,      -- 0..1 as last seen; 1 once finished normally
    request       BLOB NOT NULL,                -- JSON: the request as its API shows it back
    error         BLOB                          -- JSON: {"type", "reason"} when FAILED
);
CREATE INDEX background_tasks_by_owner ON background_tasks (owner, created_ms);

-- A task's log lines, readable while it runs.
CREATE TABLE background_task_logs (
    task_id TEXT NOT NULL REFERENCES background_tasks (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    ts_ms   INTEGER NOT NULL,
    level   TEXT NOT NULL CHECK (level IN ('DEBUG', 'INFO', 'WARN', 'ERROR')),
    message TEXT NOT NULL,
    command INTEGER,                            -- 0-based index of the pipeline command, if any
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;
