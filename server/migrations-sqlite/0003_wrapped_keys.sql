-- End-to-end encryption: each notebook epoch key wrapped for one link (token id) under that link's
-- secret. Opaque to the server; a member's join call returns its own.
CREATE TABLE wrapped_keys (
    workspace_id TEXT   NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_id     TEXT   NOT NULL,
    epoch        BIGINT NOT NULL,
    wrapped      BLOB   NOT NULL,
    PRIMARY KEY (workspace_id, token_id, epoch)
);
