-- Retention counts from the snapshot (snapshot_marks: when each snapshot was taken), idempotency
-- keys outlive the updates they name (retired_keys), and each workspace's stored bytes are kept
-- on its row for the quotas.
ALTER TABLE workspaces ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE workspaces SET stored_bytes =
    COALESCE((SELECT SUM(size) FROM updates u WHERE u.workspace_id = workspaces.id), 0)
  + COALESCE((SELECT SUM(size) FROM snapshots s WHERE s.workspace_id = workspaces.id), 0);

CREATE TABLE snapshot_marks (
    workspace_id TEXT   NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    covers       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, covers)
);
INSERT INTO snapshot_marks (workspace_id, covers, created_at)
    SELECT workspace_id, covers, created_at FROM snapshots;

CREATE TABLE retired_keys (
    workspace_id    TEXT   NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    idempotency_key BYTEA  NOT NULL,
    seq             BIGINT NOT NULL,
    retired_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, idempotency_key)
);
