//! The page's half of background sync: what a tab does with a broadcast about the notebook it
//! has open. The web app (`web-ui`) and the JavaScript package ([`crate::js::HearthSync`]) both
//! run it, so a remote edit reaches an open engine one way.
//!
//! 0. [`preview`] — another tab's edit about to be written (`Shown`) is shown at once
//!    ([`Engine::show_unstored`]: this engine's own edits carry it until it is stored);
//! 1. [`show`] — an update carried by the broadcast is imported at once (it is the stored
//!    update of another tab's edit, or a live record the worker verified and holds until the
//!    server confirms it);
//! 2. [`catch_up`] — then storage is read (cursors, quarantine of an unreadable record) until
//!    the worker's write is visible, and pulled records are folded into the local snapshot when
//!    enough have arrived; nothing for a held record (the worker says when it is stored), and
//!    nothing when the stored records are ones this tab showed held in an unbroken run — but
//!    every [`READ_EVERY`] seqs ([`confirmed`]).

use crate::protocol::{Broadcast, READ_EVERY};
use client_wasm::storage::IdbStore;
use client_wasm::{Engine, EngineError};

/// A broadcast that brings stored updates for a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Workspace id.
    pub ws: String,
    /// The update, when the broadcast carried it.
    pub update: Option<Vec<u8>>,
    /// The cursor the worker is moving to while it stores a carried record: storage is read
    /// again until the engine's cursor reaches it.
    pub storing: Option<u64>,
    /// The pending key another tab stored its edit under (`Local`).
    pub key: Option<String>,
    /// A live record the worker holds until the server confirms it: shown, nothing to read yet
    /// (the worker's `Received` once it is stored makes the read).
    pub held: bool,
    /// The seq a worker's `Received` names: the record it carries or holds, or the last one it
    /// stored.
    pub seq: Option<u64>,
}

impl Arrival {
    /// The arrival a broadcast announces (`Local` from a tab, `Received` from a worker).
    pub fn of(msg: &Broadcast) -> Option<Arrival> {
        match msg {
            Broadcast::Local { ws, update, key } => Some(Arrival {
                ws: ws.clone(),
                update: update.clone(),
                storing: None,
                key: key.clone(),
                held: false,
                seq: None,
            }),
            Broadcast::Received {
                ws,
                seq,
                update,
                held,
            } => Some(Arrival {
                ws: ws.clone(),
                update: update.clone(),
                storing: update.as_ref().filter(|_| !held).map(|_| *seq),
                key: None,
                held: *held,
                seq: Some(*seq),
            }),
            _ => None,
        }
    }
}

/// Shows another tab's edit of `ws` before its write commits (a [`Broadcast::Shown`]); true
/// when the engine changed. Nothing else is read: its `Local` follows once it is stored.
pub fn preview(engine: &Engine<IdbStore>, ws: &str, msg: &Broadcast) -> bool {
    match msg {
        Broadcast::Shown { ws: of, update } if of == ws => engine.show_unstored(update),
        _ => false,
    }
}

/// True when there is nothing to import or read for the arrival — the next arrival's read of
/// storage catches up the bookkeeping:
/// - the `Local` of an edit [`preview`] showed: it is stored now (edits here stop carrying it);
/// - the worker's `Received` for records it stored that this tab showed while the worker held
///   them, in an unbroken run after what it read ([`Engine::holds_through`]), but for one seq
///   in [`READ_EVERY`].
///
/// (Skipping the read keeps this tab off the two cores while the push it raced, or the next
/// remote edit, is on its way.) Called first for every arrival: the engine learns the key of a
/// `Local` here ([`Engine::heard_pending`]).
pub fn confirmed(engine: &Engine<IdbStore>, arrival: &Arrival) -> bool {
    if let Some(key) = &arrival.key {
        engine.heard_pending(key);
    }
    if arrival.storing.is_some() {
        return false;
    }
    match (&arrival.update, arrival.seq) {
        (Some(bytes), _) => engine.confirm_stored(bytes),
        (None, Some(seq)) => !arrival.held && seq % READ_EVERY != 0 && engine.holds_through(seq),
        (None, None) => false,
    }
}

/// Imports the carried update, if any (a held live record as such: [`Engine::show_held`]);
/// true unless there was none or it could not be read.
pub fn show(engine: &Engine<IdbStore>, arrival: &Arrival) -> bool {
    match (&arrival.update, arrival.seq) {
        (Some(bytes), Some(seq)) if arrival.held => engine.show_held(seq, bytes),
        (Some(bytes), _) => engine.import_stored(bytes),
        (None, _) => false,
    }
}

/// Reads storage until the engine holds what the broadcast announced (`changed` after each
/// read), then compacts when due. Returns true when the worker must act: a compaction queued a
/// snapshot for upload, or a record's witness showed the server forked the notebook (the worker's
/// next round then stops with `server_fork`) — the caller tells it (a `Local` broadcast).
pub async fn catch_up(
    engine: &Engine<IdbStore>,
    arrival: &Arrival,
    changed: &dyn Fn(),
) -> Result<bool, EngineError> {
    if arrival.held {
        return Ok(false);
    }
    let was_forked = engine.record().forked.is_some();
    // The worker's write of an announced record began before it told us, but Chromium may
    // still order our read first: read again until the cursor is there (an unreadable record
    // is only found, and kept aside, by a read).
    for wait in [0, 20, 50, 100, 200, 400] {
        if wait > 0 {
            client_wasm::sync::fetch::sleep_ms(wait).await;
        }
        engine.refresh().await?;
        changed();
        if arrival
            .storing
            .is_none_or(|seq| engine.record().last_pulled_seq >= seq)
        {
            break;
        }
    }
    let forked = !was_forked && engine.record().forked.is_some();
    // Compaction is housekeeping: one that failed (a full disk) is tried again next time.
    Ok(engine.compact_if_due().await.unwrap_or(false) || forked)
}
