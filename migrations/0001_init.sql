-- Node identity (node id, name) kept with the data, so it survives restarts.
CREATE TABLE node_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per index. Documents live in a table of their own (table_name), one column per
-- leaf field; `columns` maps field paths to those column names.
CREATE TABLE indices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    uuid        TEXT NOT NULL UNIQUE,
    table_name  TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL,
    settings    TEXT NOT NULL,     -- JSON, as PUT /<index> gave it
    mappings    TEXT NOT NULL,     -- JSON, as GET /<index>/_mapping shows it
    columns     TEXT NOT NULL,     -- JSON object: field path -> column name
    next_seq_no INTEGER NOT NULL DEFAULT 0
);
