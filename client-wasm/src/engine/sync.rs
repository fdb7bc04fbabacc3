//! The engine's side of sync: catching up with what the worker (or another tab) stored, building
//! the compaction snapshot the worker uploads, and backup export/import. The network side is
//! [`crate::sync`], which never decodes Loro.

use super::import::{import_one, import_remote, import_state};
use super::{new_doc, now_ms, random_peer_id, Engine, Origin};
use crate::error::EngineError;
use crate::storage::{Compaction, RemoteRecord, Store, WorkspaceRecord};
use loro::{ExportMode, IdSpan, LoroDoc};
use shared_schema::backup::{self, BackupHeader};
use shared_schema::frame::{PullRecord, PullRecordKind};
use shared_schema::model;
use shared_schema::Role;

/// Remote records kept before an engine compacts them into its local snapshot (and, on the
/// owner's device, queues that snapshot for upload so the server can drop what it covers).
pub const COMPACT_AFTER: usize = 200;

/// Largest pending update an import queues; bigger histories are split into several.
pub const MAX_PENDING_CHUNK: usize = 256 * 1024;

fn encode_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Encode(e.to_string())
}

impl<S: Store> Engine<S> {
    /// Local updates not yet acknowledged by the server, oldest first.
    pub async fn pending_updates(&self) -> Result<Vec<crate::storage::PendingUpdate>, EngineError> {
        Ok(self.store.pending(&self.id()).await?)
    }

    /// Reads what is new in storage since the last read (the worker or another tab wrote it —
    /// only those records, not the whole workspace) and imports it. Never
    /// fails because of a remote record (those are quarantined); fails with `TooNew` when the
    /// document now needs a newer app, like `open`.
    pub async fn refresh(&self) -> Result<bool, EngineError> {
        let since = self.seen.borrow().since.clone();
        let Some(state) = self.store.load_since(&self.id(), &since).await? else {
            return Err(EngineError::UnknownWorkspace(self.id()));
        };
        let mut doc = self.doc();
        let vv = doc.oplog_vv();
        let imported = import_state(&mut doc, &state, &mut self.seen.borrow_mut())?;
        for p in &state.pending {
            let _ = self.confirm_stored(&p.bytes);
        }
        self.adopt(doc.clone());
        *self.record.borrow_mut() = state.record.clone();
        self.quarantine(&state, imported).await;
        let changed = doc.oplog_vv() != vv;
        if changed {
            self.notify(Origin::Remote);
            if model::schema_version(&doc) < model::SCHEMA_VERSION {
                // A joined workspace's first content ([`Self::open`] left it unmigrated), or a
                // device on an older app version wrote.
                self.migrate_and_name(None).await?;
            }
            self.save_open_cache_if_due().await;
        }
        model::check_schema(&doc)?;
        Ok(changed)
    }

    /// The pending update the last edit stored (the whole run's when it merged), for the page
    /// to hand to other tabs with its broadcast.
    pub fn last_stored_update(&self) -> Option<crate::storage::PendingUpdate> {
        self.last_stored.borrow().clone()
    }

    /// Hands every later edit's pending update to `stager` once its key is allocated, while its
    /// write commits ([`crate::storage::Store::append_pending`]); `None` stops it. The page sets
    /// one while the live channel is up, so the sync worker pushes an edit during the local
    /// flush instead of after it ([`crate::sync::SyncCore::stage`]). Staged updates are never
    /// merged into (the server may have them under their keys); without a stager consecutive
    /// edits share one pending update, as a device offline queues them.
    pub fn set_stager(&self, stager: Option<super::Stager>) {
        self.stager.replace(stager);
    }

    /// Imports an update another tab has just **stored**, or the worker has verified as the
    /// server's next record and is storing, and broadcast — so the page shows it before
    /// [`Self::refresh`] reads storage (which still follows and finds nothing new to apply —
    /// Loro skips what it has). False when the bytes cannot be read: the refresh then handles
    /// what is stored (quarantine included). Bytes that are neither stored here nor on the
    /// server never come this way.
    pub fn import_stored(&self, bytes: &[u8]) -> bool {
        let Ok(bytes) = crate::keys::readable(&self.record(), bytes, Some(u64::MAX)) else {
            return false;
        };
        self.import_readable(&bytes)
    }

    /// Imports a live record the sync worker verified as the server's record `seq` and holds
    /// until the server confirms it ([`Self::import_stored`]). When it follows on from what the
    /// document holds (the record before it read from storage or shown this way) and all of it
    /// applied, the document now holds the log through `seq` ([`Self::holds_through`]).
    pub fn show_held(&self, seq: u64, bytes: &[u8]) -> bool {
        let Ok(bytes) = crate::keys::readable(&self.record(), bytes, Some(u64::MAX)) else {
            return false;
        };
        if !self.import_readable(&bytes) {
            return false;
        }
        let have = self.doc().oplog_vv();
        // Loro keeps ops whose dependencies it lacks aside: those are not held.
        let whole = LoroDoc::decode_import_blob_meta(&bytes, false).is_ok_and(|meta| {
            meta.partial_end_vv
                .iter()
                .all(|(peer, end)| have.get(peer).is_some_and(|c| c >= end))
        });
        if whole && seq == self.held_through() + 1 {
            self.held_upto.set(seq);
        }
        true
    }

    /// True when the document holds every record of the server's log through `seq`: read from
    /// storage, or shown in an unbroken run after what was read ([`Self::show_held`]). When the
    /// worker says it stored them, storage has nothing this document lacks.
    pub fn holds_through(&self, seq: u64) -> bool {
        self.held_through() >= seq
    }

    fn held_through(&self) -> u64 {
        let read = self.record.borrow().last_pulled_seq;
        self.held_upto.get().max(read)
    }

    /// Another tab stored a pending update under `key` (its `Local` broadcast), or this engine
    /// did: a key reserved for the next edit at or below it is not used (an edit made now may
    /// depend on it and must sort after it), and one below what storage reads reached already is
    /// read again by the next [`Self::refresh`] (a tab may store a key it reserved earlier after
    /// others stored greater ones: [`crate::storage::Ahead`]).
    pub fn heard_pending(&self, key: &str) {
        let mut newest = self.newest_pending.borrow_mut();
        if newest.as_deref().is_none_or(|n| key > n) {
            *newest = Some(key.to_owned());
        }
        drop(newest);
        let mut seen = self.seen.borrow_mut();
        if !seen.own.contains(key)
            && seen
                .since
                .pending_after
                .as_deref()
                .is_some_and(|read| key <= read)
        {
            // Any string below `key`: its proper prefix.
            seen.since.pending_after = key
                .char_indices()
                .last()
                .map(|(i, _)| key[..i].to_owned())
                .filter(|p| !p.is_empty());
        }
    }

    /// The newest pending key this engine knows of: stored, heard of, or read from storage.
    pub(super) fn newest_pending(&self) -> Option<String> {
        let heard = self.newest_pending.borrow().clone();
        let read = self.seen.borrow().since.pending_after.clone();
        heard.max(read)
    }

    /// Hands every later edit's update, as it will be stored, to `preview` before its write
    /// begins; `None` stops it. The page sets one together with the stager
    /// ([`Self::set_stager`]), so the other tabs of the browser show an edit while it is being
    /// written ([`Self::show_unstored`]) instead of after.
    pub fn set_preview(&self, preview: Option<super::Preview>) {
        if preview.is_some() {
            // The next edit is previewed as it is stored: it starts a pending update of its own.
            self.run.replace(None);
        }
        self.preview.replace(preview);
    }

    /// Shows another tab's edit whose write has not committed yet (its preview broadcast). Until
    /// [`Self::confirm_stored`] hears of the same bytes (its `Local` broadcast, or a storage read
    /// that finds them), every edit made here carries its ops in its own update, so an edit built
    /// on it never depends on ops that may be stored nowhere (that write failing, and its push
    /// too). False when the bytes cannot be read (nothing shown).
    pub fn show_unstored(&self, stored: &[u8]) -> bool {
        let Ok(bytes) = crate::keys::readable(&self.record(), stored, Some(u64::MAX)) else {
            return false;
        };
        let Ok(meta) = LoroDoc::decode_import_blob_meta(&bytes, false) else {
            return false;
        };
        self.shown.borrow_mut().insert(
            stored.to_vec(),
            super::Shown {
                start: meta.partial_start_vv,
                end: meta.partial_end_vv,
            },
        );
        self.import_readable(&bytes)
    }

    /// The update `stored` (as stored, sealed or not) is in storage: if this engine showed it
    /// before it was ([`Self::show_unstored`]), its edits stop carrying it. True when it was
    /// shown and the document holds all of it (nothing left to import).
    pub fn confirm_stored(&self, stored: &[u8]) -> bool {
        let mut shown = self.shown.borrow_mut();
        if shown.is_empty() {
            return false;
        }
        let Some(span) = shown.remove(stored) else {
            return false;
        };
        let have = self.doc().oplog_vv();
        span.end
            .iter()
            .all(|(peer, end)| have.get(peer).is_some_and(|c| c >= end))
    }

    /// Imports plain update bytes; true unless Loro refused them.
    fn import_readable(&self, bytes: &[u8]) -> bool {
        let mut doc = self.doc();
        let vv = doc.oplog_vv();
        if import_one(&mut doc, bytes).is_err() {
            return false;
        }
        self.adopt(doc.clone());
        if doc.oplog_vv() != vv {
            self.notify(Origin::Remote);
        }
        true
    }

    /// A full snapshot of this engine's document (local edits included).
    pub fn snapshot(&self) -> Result<Vec<u8>, EngineError> {
        self.doc().export(ExportMode::Snapshot).map_err(encode_err)
    }

    /// Compacts when enough remote records piled up; see [`Self::compact`].
    pub async fn compact_if_due(&self) -> Result<bool, EngineError> {
        if self.store.received_len(&self.id()).await? < COMPACT_AFTER {
            return Ok(false);
        }
        self.compact().await
    }

    /// Replaces the local snapshot with one holding exactly the stored snapshot and the received
    /// records up to the cursor `N` — never local pending edits, so devices that start from it
    /// see only what the server has — and drops those records. On the owner's device the
    /// snapshot is also queued for upload with `covers = N`. False when another tab compacted
    /// further meanwhile.
    pub async fn compact(&self) -> Result<bool, EngineError> {
        let Some(state) = self.store.load(&self.id()).await? else {
            return Err(EngineError::UnknownWorkspace(self.id()));
        };
        let covers = state.record.last_pulled_seq;
        let mut doc = LoroDoc::new();
        if let Some(s) = &state.snapshot {
            doc.import(s)?;
        }
        let upto: Vec<RemoteRecord> = state
            .received
            .iter()
            .filter(|r| r.seq <= covers && !state.quarantined.contains(&r.seq))
            .cloned()
            .collect();
        let bad = import_remote(&mut doc, &state.record, &upto);
        if !bad.is_empty() {
            let _ = self.store.quarantine(&state.record.id, &bad).await;
        }
        let snapshot = doc.export(ExportMode::Snapshot).map_err(encode_err)?;
        let upload = state.record.role == Role::Master && state.record.server_url.is_some();
        // The local snapshot stays readable here; the server's copy is sealed.
        let sealed = if upload {
            Some(crate::keys::sealed(&state.record, snapshot.clone())?)
        } else {
            None
        };
        let compaction = Compaction {
            snapshot,
            covers,
            upload: sealed,
        };
        Ok(self.store.compact(&state.record.id, &compaction).await?)
    }

    /// Exports the workspace as one backup file (design §5 format): a snapshot record at the last
    /// pulled seq, holding everything on this device. Works with no server.
    pub fn export_backup(&self) -> Result<Vec<u8>, EngineError> {
        self.export_backup_as(None)
    }

    /// [`Self::export_backup`]; with a passphrase (an encrypted notebook), the snapshot is sealed
    /// and the file carries the notebook's epoch keys protected by the passphrase (Argon2id):
    /// whoever has the file needs the passphrase to read it.
    pub fn export_backup_as(&self, passphrase: Option<&str>) -> Result<Vec<u8>, EngineError> {
        let record = self.record();
        let snapshot = self.snapshot()?;
        let (bytes, keys) = match (passphrase, &record.keys) {
            (None, _) => (snapshot, None),
            (Some(_), None) => return Err(EngineError::PlainNotebook),
            (Some(passphrase), Some(ring)) => {
                let epochs = shared_schema::seal::KeyRing {
                    epochs: ring.epochs.clone(),
                    ..Default::default()
                };
                let salt = crate::keys::fresh_secret()?.as_bytes()[..shared_schema::seal::SALT_LEN]
                    .try_into()
                    .map_err(|_| EngineError::PlainNotebook)?;
                let protected = shared_schema::seal::protect(
                    &epochs,
                    passphrase,
                    salt,
                    crate::keys::fresh_nonce()?,
                )?;
                use base64::Engine as _;
                (
                    crate::keys::sealed(&record, snapshot)?,
                    Some(base64::engine::general_purpose::STANDARD.encode(protected)),
                )
            }
        };
        let header = BackupHeader {
            workspace_id: record.id.clone(),
            created_at: (now_ms() / 1000).max(0) as u64,
            head_seq: record.last_pulled_seq,
            chain_head: record.chain_head,
            source: "client".into(),
            keys,
        };
        let records = vec![PullRecord {
            kind: PullRecordKind::Snapshot,
            seq: record.last_pulled_seq,
            chain: record.chain_head,
            bytes,
        }];
        Ok(backup::encode(&header, &records)?)
    }

    /// Imports a backup file (from a server or a client) as a new local workspace owned by this
    /// device. The file's integrity chain is verified first. Its content is queued for the server
    /// as pending updates of at most [`MAX_PENDING_CHUNK`] bytes each (one huge update could never
    /// be pushed). It is named `name`, else the backup's name + " (restored)".
    pub async fn import_backup(
        store: S,
        bytes: &[u8],
        name: Option<&str>,
    ) -> Result<Self, EngineError> {
        Self::import_backup_with(store, bytes, name, None).await
    }

    /// [`Self::import_backup`] of a file that may carry its keys protected by a passphrase
    /// ([`Self::export_backup_as`]): such a file needs `passphrase` (else
    /// [`EngineError::PassphraseNeeded`]; a wrong one is `Seal(WrongPassphrase)`). A sealed file
    /// without keys opens with this browser's keys of its notebook, else [`EngineError::SealedBackup`].
    pub async fn import_backup_with(
        store: S,
        bytes: &[u8],
        name: Option<&str>,
        passphrase: Option<&str>,
    ) -> Result<Self, EngineError> {
        let parsed = backup::decode(bytes)?;
        let batch: Vec<Vec<u8>> = if parsed
            .records
            .iter()
            .any(|r| shared_schema::seal::is_sealed(&r.bytes))
        {
            // Sealed: the keys come from the file (behind its passphrase) or, for a server's
            // backup, from this browser's copy of the notebook — and from nowhere else.
            let source = match &parsed.header.keys {
                Some(protected) => {
                    use base64::Engine as _;
                    let passphrase = passphrase.ok_or(EngineError::PassphraseNeeded)?;
                    let blob = base64::engine::general_purpose::STANDARD
                        .decode(protected)
                        .map_err(|_| shared_schema::seal::SealError::WrongPassphrase)?;
                    WorkspaceRecord {
                        keys: Some(shared_schema::seal::unprotect(&blob, passphrase)?),
                        ..WorkspaceRecord::new_local(&parsed.header.workspace_id, "")
                    }
                }
                None => store
                    .get_workspace(&parsed.header.workspace_id)
                    .await?
                    .filter(|r| r.keys.is_some())
                    .ok_or(EngineError::SealedBackup)?,
            };
            parsed
                .records
                .iter()
                .map(|r| {
                    crate::keys::readable(&source, &r.bytes, Some(r.seq)).map(|b| b.into_owned())
                })
                .collect::<Result<_, _>>()
                .map_err(|_| EngineError::SealedBackup)?
        } else {
            parsed.records.iter().map(|r| r.bytes.clone()).collect()
        };
        let doc = new_doc(random_peer_id())?;
        if !batch.is_empty() {
            doc.import_batch(&batch)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        // Beside the original on one device, a restore must not look like it.
        let title = name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} (restored)", model::name(&doc)));
        let record = WorkspaceRecord {
            schema_version: model::schema_version(&doc),
            keys: Some(crate::keys::new_owner_ring()?),
            ..WorkspaceRecord::new_local(&id, &title)
        };
        store.create_workspace(&record).await?;
        for chunk in history_chunks(&doc, MAX_PENDING_CHUNK)? {
            let chunk = crate::keys::sealed(&record, chunk)?;
            store.append_pending(&id, &chunk, None, None).await?;
        }
        let engine = Self::open(store, &id).await?;
        engine.rename(&title).await?;
        Ok(engine)
    }
}

/// The whole history of `doc` as updates of at most `max` bytes (a single change larger than
/// that stays whole), cut along Lamport order so every chunk's dependencies are in it or in an
/// earlier chunk: pushed in this order, the server's log stays causal.
pub fn history_chunks(doc: &LoroDoc, max: usize) -> Result<Vec<Vec<u8>>, EngineError> {
    let all = doc.export(ExportMode::all_updates()).map_err(encode_err)?;
    if all.len() <= max {
        return Ok(vec![all]);
    }
    let mut changes: Vec<(u32, IdSpan)> = Vec::new();
    for (peer, end) in doc.oplog_vv().iter() {
        let mut counter = 0;
        while counter < *end {
            let Some(change) = doc.get_change(loro::ID::new(*peer, counter)) else {
                break;
            };
            let next = change.id.counter + change.len as i32;
            changes.push((change.lamport, IdSpan::new(*peer, change.id.counter, next)));
            counter = next.max(counter + 1);
        }
    }
    changes.sort_by_key(|(lamport, span)| (*lamport, span.peer));
    let mut out = Vec::new();
    let (mut at, mut take) = (0usize, 64usize);
    while at < changes.len() {
        let end = (at + take).min(changes.len());
        let spans: Vec<IdSpan> = changes[at..end].iter().map(|(_, s)| *s).collect();
        let bytes = doc
            .export(ExportMode::updates_in_range(spans))
            .map_err(encode_err)?;
        if bytes.len() > max && end - at > 1 {
            take = ((end - at) / 2).max(1);
            continue;
        }
        out.push(bytes);
        at = end;
        take = take.saturating_mul(2);
    }
    Ok(out)
}
