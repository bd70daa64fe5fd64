-- Async searches (ES|QL, later EQL and SML): state, expiry and the final response frame.
-- State changes are guarded (`WHERE state = 'running'`) so a final state is written once.
CREATE TABLE searches (
    id                 TEXT PRIMARY KEY,           -- the async id the client sees
    kind               TEXT NOT NULL,              -- 'esql', ...
    state              TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    keep_on_completion INTEGER NOT NULL,
    created_ms         INTEGER NOT NULL,
    expires_ms         INTEGER NOT NULL,
    headers            BLOB NOT NULL,              -- JSON: request headers (X-Opaque-Id)
    response           BLOB,                       -- JSON: columns, warnings, counters (no rows)
    error              BLOB,                       -- JSON: {"status": N, "error": {...}} when failed
    row_count          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX searches_by_expiry ON searches (expires_ms);

-- Result rows, written in batches while the query runs.
CREATE TABLE search_rows (
    search_id TEXT NOT NULL REFERENCES searches (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    row       BLOB NOT NULL,                       -- JSON array of the row's values
    PRIMARY KEY (search_id, seq)
) WITHOUT ROWID;
