//! What the sync worker needs from the engine: pending updates, acknowledgements, applying pulled
//! records after checking the integrity chain, compaction, and backup export/import.

use super::{import_state, new_doc, now_ms, Engine, Origin};
use crate::error::EngineError;
use crate::storage::{PendingUpdate, Store, WorkspaceRecord};
use loro::ExportMode;
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame::{PullRecord, PullRecordKind};
use shared_schema::sync::{verify_page, PageError};
use shared_schema::{Chain, Role};

/// What [`Engine::apply_remote`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Records imported (duplicates of already-pulled seqs are skipped).
    pub applied: usize,
    /// Last pulled seq after the call.
    pub last_pulled_seq: u64,
}

impl<S: Store> Engine<S> {
    /// Local updates not yet acknowledged by the server, oldest first.
    pub async fn pending_updates(&self) -> Result<Vec<PendingUpdate>, EngineError> {
        Ok(self.store.pending(&self.id()).await?)
    }

    /// Deletes pending updates the server acknowledged.
    pub async fn acknowledge(&self, keys: &[String]) -> Result<(), EngineError> {
        Ok(self.store.ack_pending(&self.id(), keys).await?)
    }

    /// Verifies pulled records against the integrity chain, then imports and stores them with the
    /// new pull position. On a chain mismatch or a gap nothing is imported or stored.
    pub async fn apply_remote(&self, records: &[PullRecord]) -> Result<ApplyOutcome, EngineError> {
        let mut record = self.record();
        let page = verify_page(record.last_pulled_seq, record.chain_head, records).map_err(
            |e| match e {
                PageError::Chain(c) => EngineError::Chain(c),
                PageError::OutOfOrder { expected, got } => {
                    EngineError::OutOfOrder { expected, got }
                }
            },
        )?;
        let snapshot = page.snapshot;
        let updates: Vec<(u64, Vec<u8>)> = page
            .updates
            .iter()
            .map(|r| (r.seq, r.bytes.clone()))
            .collect();
        let (seq, chain) = (page.seq, page.chain);
        let applied = updates.len() + usize::from(snapshot.is_some());
        if applied == 0 {
            return Ok(ApplyOutcome {
                applied,
                last_pulled_seq: record.last_pulled_seq,
            });
        }
        // Decode everything on a scratch copy first, so malformed bytes import nothing.
        let doc = self.doc();
        let scratch = doc.fork();
        if let Some(s) = snapshot {
            scratch.import(&s.bytes)?;
        }
        let batch: Vec<Vec<u8>> = updates.iter().map(|(_, b)| b.clone()).collect();
        if !batch.is_empty() {
            scratch.import_batch(&batch)?;
        }
        if let Some(s) = snapshot {
            doc.import(&s.bytes)?;
        }
        if !batch.is_empty() {
            doc.import_batch(&batch)?;
        }
        record.last_pulled_seq = seq;
        record.chain_head = chain;
        self.store.put_received(&record, &updates).await?;
        if snapshot.is_some() {
            let snap = doc
                .export(ExportMode::Snapshot)
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            self.store.compact(&record.id, &snap, seq).await?;
        }
        *self.record.borrow_mut() = record;
        self.notify(Origin::Remote);
        Ok(ApplyOutcome {
            applied,
            last_pulled_seq: seq,
        })
    }

    /// Re-reads storage (another tab or the worker wrote to it) and imports what is new.
    pub async fn refresh(&self) -> Result<bool, EngineError> {
        let Some(state) = self.store.load(&self.id()).await? else {
            return Err(EngineError::UnknownWorkspace(self.id()));
        };
        let doc = self.doc();
        let vv = doc.oplog_vv();
        let mut record = import_state(&doc, state)?;
        record.peer_id = self.record.borrow().peer_id;
        *self.record.borrow_mut() = record;
        let changed = doc.oplog_vv() != vv;
        if changed {
            self.notify(Origin::Remote);
        }
        Ok(changed)
    }

    /// Stores new sync settings (server, token, role) for this workspace.
    pub async fn set_remote(
        &self,
        server_url: Option<String>,
        token: Option<String>,
        role: Role,
    ) -> Result<(), EngineError> {
        let mut record = self.record();
        record.server_url = server_url;
        record.token = token;
        record.role = role;
        self.store.put_workspace(&record).await?;
        *self.record.borrow_mut() = record;
        Ok(())
    }

    /// The document's version vector, encoded (for the worker and diagnostics).
    pub fn version_vector(&self) -> Vec<u8> {
        self.doc().oplog_vv().encode()
    }

    /// A full snapshot of the document (for upload with `covers = last_pulled_seq`).
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.doc()
            .export(ExportMode::Snapshot)
            .map_err(|e| EngineError::Encode(e.to_string()))
    }

    /// Writes a local snapshot and clears the `received` updates it covers.
    pub async fn compact(&self) -> Result<(), EngineError> {
        let snap = self.snapshot()?;
        let record = self.record();
        Ok(self
            .store
            .compact(&record.id, &snap, record.last_pulled_seq)
            .await?)
    }

    /// Exports the workspace as one backup file (design §5 format): a snapshot record at the last
    /// pulled seq. Works with no server.
    pub fn export_backup(&self) -> Result<Vec<u8>, EngineError> {
        let record = self.record();
        let header = BackupHeader {
            workspace_id: record.id.clone(),
            created_at: (now_ms() / 1000).max(0) as u64,
            head_seq: record.last_pulled_seq,
            chain_head: record.chain_head,
            source: "client".into(),
        };
        let records = vec![PullRecord {
            kind: PullRecordKind::Snapshot,
            seq: record.last_pulled_seq,
            chain: record.chain_head,
            bytes: self.snapshot()?,
        }];
        Ok(backup::encode(&header, &records)?)
    }

    /// Imports a backup file (from a server or a client) as a new local workspace owned by this
    /// device. The file's integrity chain is verified first.
    pub async fn import_backup(
        store: S,
        bytes: &[u8],
        name: Option<&str>,
        peer_id: u64,
    ) -> Result<Self, EngineError> {
        let parsed = backup::decode(bytes)?;
        let doc = new_doc(peer_id)?;
        let batch: Vec<Vec<u8>> = parsed.records.iter().map(|r| r.bytes.clone()).collect();
        if !batch.is_empty() {
            doc.import_batch(&batch)?;
        }
        let snapshot = doc
            .export(ExportMode::Snapshot)
            .map_err(|e| EngineError::Encode(e.to_string()))?;
        let record = WorkspaceRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: name
                .map(str::to_owned)
                .unwrap_or_else(|| shared_schema::model::name(&doc)),
            role: Role::Master,
            token: None,
            server_url: None,
            last_pulled_seq: 0,
            chain_head: Chain::genesis(),
            schema_version: shared_schema::model::schema_version(&doc),
            peer_id,
        };
        store.put_workspace(&record).await?;
        store.compact(&record.id, &snapshot, 0).await?;
        // The imported content is local-only until pushed: queue it as one pending update.
        let update = PendingUpdate {
            key: format!("{:013}-import", now_ms().max(0)),
            bytes: snapshot,
        };
        store.append_pending(&record.id, &update).await?;
        let id = record.id.clone();
        let engine = Self::open(store, &id).await?;
        if let Some(name) = name {
            engine.rename(name).await?;
        }
        Ok(engine)
    }
}
