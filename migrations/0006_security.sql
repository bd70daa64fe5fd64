-- Security (issue 14): native users, roles and API keys, as Elasticsearch keeps them in its
-- .security index. Secrets are stored only as slow salted hashes (service/security/passwords.py).

-- Users of the native realm and the reserved `elastic` superuser (reserved = 1: only its
-- password may change). `roles` is a JSON list of role names; `metadata` a JSON object.
CREATE TABLE security_users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles         BLOB NOT NULL,
    full_name     TEXT,
    email         TEXT,
    metadata      BLOB NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved IN (0, 1)),
    changed_ms    INTEGER NOT NULL
) WITHOUT ROWID;

-- Roles of the native store: the descriptor JSON as GET /_security/role shows it.
CREATE TABLE security_roles (
    name       TEXT PRIMARY KEY,
    descriptor BLOB NOT NULL,
    changed_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- API keys. `role_descriptors`: the key's own roles (JSON object, name -> descriptor);
-- `limited_by`: its creator's role descriptors when it was created (JSON object, name ->
-- descriptor), which bound it.
CREATE TABLE security_api_keys (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key_hash         TEXT NOT NULL,
    owner            TEXT NOT NULL,
    realm            TEXT NOT NULL,
    realm_type       TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    expires_ms       INTEGER,
    invalidated_ms   INTEGER,
    role_descriptors BLOB NOT NULL,
    limited_by       BLOB NOT NULL,
    metadata         BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX security_api_keys_by_owner ON security_api_keys (owner, created_ms);
CREATE INDEX security_api_keys_by_name ON security_api_keys (name);
