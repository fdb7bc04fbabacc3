-- Hearth server schema (SQLite). The server stores opaque blobs; it never decodes Loro.
CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    head_seq        BIGINT NOT NULL DEFAULT 0,
    chain           BLOB  NOT NULL,
    snapshot_covers BIGINT NOT NULL DEFAULT 0,
    deleted_at      BIGINT
);

CREATE TABLE updates (
    workspace_id    TEXT    NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    seq             BIGINT  NOT NULL,
    bytes           BLOB   NOT NULL,
    size            INTEGER NOT NULL,
    idempotency_key BLOB   NOT NULL,
    chain           BLOB   NOT NULL,
    token_id        TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (workspace_id, seq),
    UNIQUE (workspace_id, idempotency_key)
);

CREATE TABLE snapshots (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    covers       BIGINT  NOT NULL,
    chain        BLOB   NOT NULL,
    bytes        BLOB   NOT NULL,
    size         INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    role         TEXT   NOT NULL,
    label        TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX tokens_by_workspace ON tokens (workspace_id);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id     TEXT,
    action       TEXT   NOT NULL,
    workspace_id TEXT,
    bytes        BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
