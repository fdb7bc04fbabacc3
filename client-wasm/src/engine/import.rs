//! Importing stored and received bytes into an engine's document.
//!
//! Loro 1.17 applies one huge text insert (a 1 MB paste) to a document that holds ops
//! *concurrent* with it in time quadratic in the insert's length — 6–15 s for 1 MB, natively
//! and in Chromium (`Tracker::update_insert_by_split`) — while the same bytes land in
//! milliseconds when they fast-forward the document. So a large blob is imported by
//! [`import_one`] onto a fork of the document at the version the blob starts from (its causal
//! past, none of this device's concurrent ops), and the document's own history is added on top
//! (small concurrent ops apply fast). The engine then continues on that document.

use super::{configure, random_peer_id, LoroDoc};
use crate::error::EngineError;
use crate::storage::{LoadedState, RemoteRecord, WorkspaceRecord};
use loro::{ExportMode, LoroError};

/// Blobs at least this large take [`import_one`]'s fork path when the document is not empty.
pub const LARGE_IMPORT: usize = 64 * 1024;

/// Imports one blob into `doc`; a large one may replace `doc` with a new document (a fresh peer
/// id, the engine's settings) holding everything `doc` held plus the blob.
pub(super) fn import_one(doc: &mut LoroDoc, bytes: &[u8]) -> Result<(), LoroError> {
    if bytes.len() >= LARGE_IMPORT && !doc.oplog_vv().is_empty() {
        if let Some(forked) = import_on_fork(doc, bytes) {
            *doc = forked;
            return Ok(());
        }
    }
    doc.import(bytes).map(|_| ())
}

/// The fork path of [`import_one`]; None when it does not apply (the blob is not readable, adds
/// nothing, fast-forwards anyway, or starts from a version `doc` lacks) or fails — the caller
/// then imports the ordinary way, which is correct, only slower.
fn import_on_fork(doc: &LoroDoc, bytes: &[u8]) -> Option<LoroDoc> {
    let meta = LoroDoc::decode_import_blob_meta(bytes, false).ok()?;
    let have = doc.oplog_vv();
    let adds = meta
        .partial_end_vv
        .iter()
        .any(|(peer, end)| have.get(peer).copied().unwrap_or(0) < *end);
    if !adds || doc.oplog_frontiers() == meta.start_frontiers {
        return None;
    }
    doc.frontiers_to_vv(&meta.start_frontiers)?;
    let fork = if meta.start_frontiers.is_empty() {
        LoroDoc::new()
    } else {
        doc.fork_at(&meta.start_frontiers).ok()?
    };
    fork.import(bytes).ok()?;
    fork.import(&doc.export(ExportMode::all_updates()).ok()?)
        .ok()?;
    // Ops `doc` holds back for a missing dependency come along.
    if let Ok(Some(waiting)) = doc.export_pending_updates() {
        fork.import(&waiting).ok()?;
    }
    // The engine's settings and a fresh peer (as after a rollback: no id is ever reused).
    configure(&fork, random_peer_id()).ok()?;
    Some(fork)
}

/// Imports blobs; true when all decoded. A few are imported one by one (Loro applies each to the
/// current state), many as one batch (Loro rebuilds the state once).
fn import_all(doc: &mut LoroDoc, blobs: &[Vec<u8>]) -> bool {
    let mut ok = true;
    // Runs of ordinary blobs between large ones.
    let mut start = 0;
    for (i, b) in blobs.iter().enumerate() {
        if b.len() >= LARGE_IMPORT {
            ok &= import_run(doc, &blobs[start..i]);
            ok &= import_one(doc, b).is_ok();
            start = i + 1;
        }
    }
    ok & import_run(doc, &blobs[start..])
}

fn import_run(doc: &LoroDoc, blobs: &[Vec<u8>]) -> bool {
    if blobs.len() > 32 {
        if !blobs.iter().any(|b| is_snapshot(b)) {
            return doc.import_batch(blobs).is_ok();
        }
        // A snapshot goes in on its own: Loro 1.17's batch import of a snapshot together with
        // updates, into a document that already holds part of the snapshot's history, can panic
        // ("counter should be continuous"; found by the fault simulation).
        let (snapshots, updates): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) =
            blobs.iter().partition(|b| is_snapshot(b));
        let mut ok = true;
        for s in snapshots {
            ok &= doc.import(s).is_ok();
        }
        let updates: Vec<Vec<u8>> = updates.into_iter().cloned().collect();
        return ok & doc.import_batch(&updates).is_ok();
    }
    let mut ok = true;
    for b in blobs {
        ok &= doc.import(b).is_ok();
    }
    ok
}

/// True for a Loro snapshot blob, from its header: `loro`, a 16-byte checksum, then the mode
/// (u16, big-endian; 2 and 3 are the snapshot encodings).
fn is_snapshot(b: &[u8]) -> bool {
    b.len() >= 22 && b.starts_with(b"loro") && matches!(u16::from_be_bytes([b[20], b[21]]), 2 | 3)
}

/// Opens remote records with the notebook's keys ([`crate::keys::readable`]): the opened ones,
/// and the seqs of those that do not open (wrong key, changed bytes, unknown epoch, a plain record
/// in an encrypted notebook) — quarantined like undecodable ones.
///
/// Each opened record's witness is checked against this device's chain history: the seq of the
/// first record whose author was shown another history comes back as the third value.
pub(super) fn open_remote(
    record: &WorkspaceRecord,
    records: &[RemoteRecord],
) -> (Vec<RemoteRecord>, Vec<u64>, Option<u64>) {
    let mut bad = Vec::new();
    let mut forked = None;
    let opened = records
        .iter()
        .filter_map(
            |r| match crate::keys::opened(record, &r.bytes, Some(r.seq)) {
                Ok((bytes, witness)) => {
                    if forked.is_none()
                        && witness.is_some_and(|w| {
                            let snapshot = r.kind == shared_schema::frame::PullRecordKind::Snapshot;
                            crate::keys::disagrees(record, &w, r.seq, snapshot)
                        })
                    {
                        forked = Some(r.seq);
                    }
                    Some(RemoteRecord {
                        bytes: bytes.into_owned(),
                        ..r.clone()
                    })
                }
                Err(_) => {
                    bad.push(r.seq);
                    None
                }
            },
        )
        .collect();
    (opened, bad, forked)
}

/// Imports remote records into `doc`, all at once when they all open and decode, else one by
/// one; returns the seqs of those that could not be read (they change nothing).
pub(super) fn import_remote(
    doc: &mut LoroDoc,
    record: &WorkspaceRecord,
    records: &[RemoteRecord],
) -> Vec<u64> {
    let (records, mut bad, _) = open_remote(record, records);
    let batch: Vec<Vec<u8>> = records.iter().map(|r| r.bytes.clone()).collect();
    if batch.is_empty() || import_all(doc, &batch) {
        return bad;
    }
    bad.extend(
        records
            .iter()
            .filter(|r| import_one(doc, &r.bytes).is_err())
            .map(|r| r.seq),
    );
    bad.sort_unstable();
    bad
}

/// Where an engine's last read of storage ended, so a refresh reads and imports only what is new
/// ([`Store::load_since`]).
#[derive(Default)]
pub(super) struct Seen {
    pub(super) since: crate::storage::Since,
    /// Keys of this engine's own edits stored since the last read (already in the document).
    pub(super) own: std::collections::HashSet<String>,
}

/// Imports what is new in a loaded state into `doc` — snapshot, then received, then pending (Loro
/// import is idempotent and order-free, so this is also how a refresh catches up). Returns the
/// remote seqs that could not be read, and a fork a witness showed. Only a damaged *local*
/// snapshot fails.
pub(super) fn import_state(
    doc: &mut LoroDoc,
    state: &LoadedState,
    seen: &mut Seen,
) -> Result<Imported, EngineError> {
    let snapshot = state.snapshot.as_ref();
    let unquarantined: Vec<RemoteRecord> = state
        .received
        .iter()
        .filter(|r| !state.quarantined.contains(&r.seq))
        .cloned()
        .collect();
    let (received, unopened, forked) = open_remote(&state.record, &unquarantined);
    // This device's own updates open with its own keys; one that does not is kept stored (for a
    // backup) and left out, like an undecodable one.
    let pending: Vec<Vec<u8>> = state
        .pending
        .iter()
        .filter(|p| !seen.own.contains(&p.key))
        .filter_map(|p| crate::keys::readable(&state.record, &p.bytes, None).ok())
        .map(|b| b.into_owned())
        .collect();
    // The common case: everything decodes, one batch import (much faster than one by one).
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(1 + received.len() + pending.len());
    batch.extend(snapshot.cloned());
    batch.extend(received.iter().map(|r| r.bytes.clone()));
    batch.extend(pending.iter().cloned());
    let mut bad = if batch.is_empty() || import_all(doc, &batch) {
        Vec::new()
    } else {
        if let Some(s) = snapshot {
            import_one(doc, s)?;
        }
        // Opened already: a plain import of what opened.
        let bad: Vec<u64> = received
            .iter()
            .filter(|r| import_one(doc, &r.bytes).is_err())
            .map(|r| r.seq)
            .collect();
        // Our own updates: import what can be read, keep every byte stored for a backup.
        for p in &pending {
            let _ = import_one(doc, p);
        }
        bad
    };
    bad.extend(unopened);
    bad.sort_unstable();
    seen.since.snapshot_covers = Some(state.record.snapshot_covers);
    // Every record up to the cursor is stored by the time the cursor moves there, but an
    // acknowledgement stores this device's own update at its seq *ahead* of the cursor: only
    // what is at or below the cursor is done with (the found-by-the-simulation rule).
    if let Some(last) = state.received.last() {
        let done = last.seq.min(state.record.last_pulled_seq);
        seen.since.received_after = seen.since.received_after.max(done);
    }
    if let Some(last) = state.pending.last() {
        if seen
            .since
            .pending_after
            .as_ref()
            .is_none_or(|k| &last.key > k)
        {
            seen.since.pending_after = Some(last.key.clone());
        }
        seen.own.retain(|k| k > &last.key);
    }
    Ok(Imported { bad, forked })
}

/// What [`import_state`] found besides the document's new state.
pub(super) struct Imported {
    /// Remote seqs that could not be read (to quarantine).
    pub(super) bad: Vec<u64>,
    /// The seq of a record whose sealed witness disagreed with this device's chain history.
    pub(super) forked: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_told_from_updates_by_their_header() -> Result<(), Box<dyn std::error::Error>> {
        let doc = LoroDoc::new();
        doc.get_text("t").insert(0, "hello")?;
        doc.commit();
        assert!(is_snapshot(&doc.export(loro::ExportMode::Snapshot)?));
        assert!(!is_snapshot(&doc.export(loro::ExportMode::all_updates())?));
        assert!(!is_snapshot(b"loro"));
        assert!(!is_snapshot(&[0u8; 40]));
        Ok(())
    }

    #[test]
    fn a_large_batch_with_a_snapshot_imports_everything() -> Result<(), Box<dyn std::error::Error>>
    {
        let a = LoroDoc::new();
        a.set_peer_id(1)?;
        let mut blobs = Vec::new();
        for i in 0..40 {
            let vv = a.oplog_vv();
            a.get_text("t").insert(0, &i.to_string())?;
            a.commit();
            blobs.push(a.export(loro::ExportMode::updates(&vv))?);
        }
        // A snapshot of part of the history first, then every update (some it covers).
        let mut all = vec![a.export(loro::ExportMode::Snapshot)?];
        all.extend(blobs);
        let b = LoroDoc::new();
        b.import(&all[5])?;
        assert!(import_run(&b, &all));
        assert_eq!(b.get_text("t").to_string(), a.get_text("t").to_string());
        Ok(())
    }
}
