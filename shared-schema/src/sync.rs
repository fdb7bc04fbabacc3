//! I/O-free sync rules shared by the worker and the engine: verifying a pulled page against the
//! integrity chain, cutting pending updates into push batches, backoff with jitter, and the sync
//! status the UI shows.

use crate::chain::{Chain, ChainError};
use crate::error::ErrorCode;
use crate::frame::{PullRecord, PullRecordKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A pulled page does not fit what the client already has.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PageError {
    /// The chain over the page does not match the server's values.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A seq is missing between the last pulled one and the page.
    #[error("pulled seq {got} does not follow {expected}")]
    OutOfOrder {
        /// Expected next seq.
        expected: u64,
        /// Seq received.
        got: u64,
    },
}

/// What a verified page adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPage<'a> {
    /// A snapshot newer than the last pulled seq (to import first), if any.
    pub snapshot: Option<&'a PullRecord>,
    /// New updates after the last pulled seq (or after the snapshot), in order.
    pub updates: Vec<&'a PullRecord>,
    /// Last pulled seq after the page.
    pub seq: u64,
    /// Chain at `seq`.
    pub chain: Chain,
}

/// Verifies a page pulled after (`seq`, `chain`): records at or before `seq` are skipped, a newer
/// snapshot restarts the chain at its value, and every later update must extend the chain by one.
pub fn verify_page(
    seq: u64,
    chain: Chain,
    records: &[PullRecord],
) -> Result<VerifiedPage<'_>, PageError> {
    let mut page = VerifiedPage {
        snapshot: None,
        updates: Vec::new(),
        seq,
        chain,
    };
    for r in records {
        match r.kind {
            PullRecordKind::Snapshot if r.seq > page.seq => {
                page.snapshot = Some(r);
                page.updates.clear();
                page.seq = r.seq;
                page.chain = r.chain;
            }
            PullRecordKind::Snapshot => {}
            PullRecordKind::Update if r.seq <= page.seq => {}
            PullRecordKind::Update => {
                if r.seq != page.seq + 1 {
                    return Err(PageError::OutOfOrder {
                        expected: page.seq + 1,
                        got: r.seq,
                    });
                }
                page.chain = page.chain.verify_next(r.seq, &r.bytes, &r.chain)?;
                page.seq = r.seq;
                page.updates.push(r);
            }
        }
    }
    Ok(page)
}

/// How many of the pending updates (given their sizes, oldest first) go into the next push batch:
/// at least one, then as many as fit in `max_bytes` of frame, at most
/// [`crate::log::MAX_BATCH_RECORDS`].
pub fn batch_len(sizes: &[(usize, usize)], max_bytes: usize) -> usize {
    let mut total = 0usize;
    for (i, (key_len, len)) in sizes.iter().enumerate() {
        total += 1 + key_len + 4 + len;
        if i > 0 && (total > max_bytes || i >= crate::log::MAX_BATCH_RECORDS) {
            return i;
        }
    }
    sizes.len()
}

/// The ids of the last messages a receiver acted on, so a message that arrives twice (the
/// worker and its page hear each other's broadcasts both directly and over the channel) is
/// acted on once.
#[derive(Debug, Default)]
pub struct Seen(std::collections::VecDeque<u64>);

impl Seen {
    /// How many ids are remembered.
    pub const KEEP: usize = 64;

    /// True the first time `id` is heard (and remembers it); false for a repeat. Id 0 (a
    /// message without one) is always new.
    pub fn first(&mut self, id: u64) -> bool {
        if id == 0 {
            return true;
        }
        if self.0.contains(&id) {
            return false;
        }
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(id);
        true
    }

    /// Reads `text` if it is a message heard for the first time. Messages are JSON objects whose
    /// first field is their id (`{"id":N,…`): a repeat is known from that alone and dropped before
    /// the rest (an update's bytes) is decoded a second time. Anything `decode` refuses is dropped
    /// and remembers nothing.
    pub fn read_first<T>(
        &mut self,
        text: &str,
        decode: impl FnOnce(&str) -> Option<T>,
        id: impl FnOnce(&T) -> u64,
    ) -> Option<T> {
        if leading_id(text).is_some_and(|n| n != 0 && self.0.contains(&n)) {
            return None;
        }
        let msg = decode(text)?;
        self.first(id(&msg)).then_some(msg)
    }
}

/// The id of a JSON message that starts `{"id":N,`, read without parsing the rest.
fn leading_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("{\"id\":")?;
    rest[..rest.find(',')?].parse().ok()
}

/// Exponential backoff with full jitter: attempt n waits a random time in [base·2ⁿ/2, base·2ⁿ],
/// capped at `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures so far.
    pub attempt: u32,
    /// First delay, ms.
    pub base_ms: u64,
    /// Largest delay, ms.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempt: 0,
            base_ms: 500,
            max_ms: 30_000,
        }
    }
}

impl Backoff {
    /// The delay after one more failure; `random` is uniform in [0, 1).
    pub fn next_delay_ms(&mut self, random: f64) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(16))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let r = random.clamp(0.0, 1.0);
        ceiling / 2 + ((ceiling / 2) as f64 * r) as u64
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What the UI shows about one workspace's sync. Its serde form is externally tagged
/// (`"offline"`, `{"up_to_date":{"seq":3}}`): cheap to decode; the JS package's `onStatus` object
/// (`{ state, … }`) is [`SyncStatus::to_json`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// Local only: no server configured.
    LocalOnly,
    /// The browser is offline; edits are kept and will sync later.
    Offline,
    /// Contacting the server (or retrying after a failure).
    Connecting {
        /// Why the last attempt failed, if it did.
        reason: Option<String>,
    },
    /// Sending or receiving.
    Syncing {
        /// Local updates not yet on the server.
        updates_left: u64,
        /// Their bytes.
        bytes_left: u64,
    },
    /// Everything is on the server and everything from it is here.
    UpToDate {
        /// Last pulled seq.
        seq: u64,
    },
    /// Sync stopped; the user must act. Local data is kept and editable (unless read-only).
    Stopped {
        /// Why.
        reason: StopReason,
        /// What happened, in the server's or the client's words.
        message: String,
    },
}

impl SyncStatus {
    /// `{"state":"<snake_case name>", …its fields}` — the object the JS package's `onStatus` gives
    /// (the shape it had when this type was internally tagged).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match serde_json::to_value(self) {
            Ok(Value::String(state)) => serde_json::json!({ "state": state }),
            Ok(Value::Object(map)) => match map.into_iter().next() {
                Some((state, Value::Object(mut fields))) => {
                    fields.insert("state".into(), state.into());
                    Value::Object(fields)
                }
                _ => Value::Null,
            },
            _ => Value::Null,
        }
    }
}

/// Why sync stopped until the user acts. The one list of stop reasons: the worker produces them,
/// the UI words them, and their wire names (`as_str`) are the status codes in the UI and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The owner revoked this device's link.
    TokenRevoked,
    /// The link expired.
    TokenExpired,
    /// The owner deleted the workspace on the server.
    WorkspaceDeleted,
    /// The token is not valid for this server.
    InvalidToken,
    /// The token may not do this (e.g. a read link pushing).
    Forbidden,
    /// The server's data failed the integrity chain (after one re-pull).
    ChainMismatch,
    /// The browser's storage is full.
    StorageFull,
    /// A local update is larger than the server accepts, even alone.
    TooLarge,
    /// The workspace was removed from this device.
    Forgotten,
    /// A member's sealed edit says the server showed it a different history than this device
    /// (end-to-end encryption's witness disagreed): the server forked the notebook.
    ServerFork,
}

impl StopReason {
    /// Every reason.
    pub const ALL: [StopReason; 10] = [
        Self::TokenRevoked,
        Self::TokenExpired,
        Self::WorkspaceDeleted,
        Self::InvalidToken,
        Self::Forbidden,
        Self::ChainMismatch,
        Self::StorageFull,
        Self::TooLarge,
        Self::Forgotten,
        Self::ServerFork,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
            Self::WorkspaceDeleted => "workspace_deleted",
            Self::InvalidToken => "invalid_token",
            Self::Forbidden => "forbidden",
            Self::ChainMismatch => "chain_mismatch",
            Self::StorageFull => "storage_full",
            Self::TooLarge => "too_large",
            Self::Forgotten => "forgotten",
            Self::ServerFork => "server_fork",
        }
    }

    /// One sentence for a person: what happened.
    pub fn headline(self) -> &'static str {
        match self {
            Self::TokenRevoked => "This link was revoked",
            Self::TokenExpired => "This link has expired",
            Self::WorkspaceDeleted => "This notebook was deleted on the server",
            Self::InvalidToken => "This link is not valid for this server",
            Self::Forbidden => "This link does not allow that",
            Self::ChainMismatch => "Sync stopped: the server's data failed its integrity check",
            Self::StorageFull => "Browser storage is full",
            Self::TooLarge => "An edit is too large for the server",
            Self::Forgotten => "This notebook was removed from this browser",
            Self::ServerFork => {
                "Sync stopped: the server showed this notebook's members different histories"
            }
        }
    }

    /// What the person can do; local data is always kept.
    pub fn action(self) -> &'static str {
        match self {
            Self::TokenRevoked | Self::TokenExpired | Self::InvalidToken | Self::Forbidden => {
                "Ask the owner for a new link. Your copy stays on this device; download a backup to keep edits made here."
            }
            Self::WorkspaceDeleted => {
                "Your copy stays on this device; download a backup or restore it as a new notebook."
            }
            Self::ChainMismatch => {
                "Your local data is kept. Tell the server's operator; download a backup to be safe."
            }
            Self::StorageFull => "Free space (delete old notebooks or site data), then reload.",
            Self::TooLarge => {
                "Download a backup, then ask the server's operator to raise HEARTH_MAX_UPDATE_BYTES."
            }
            Self::Forgotten => "Open it again from a link or a backup.",
            Self::ServerFork => {
                "Your local data is kept. Download a backup, and tell the server's operator: the server (or whoever controls it) is not giving everyone the same notebook."
            }
        }
    }

    /// Whether edits made here could never reach the server again under this link (it was
    /// revoked, expired, is not valid, does not allow writing, or the notebook is gone): the app
    /// then stops offering edits, so none pile up that can only be kept in a backup.
    pub fn blocks_edits(self) -> bool {
        matches!(
            self,
            Self::TokenRevoked
                | Self::TokenExpired
                | Self::InvalidToken
                | Self::Forbidden
                | Self::WorkspaceDeleted
                | Self::Forgotten
        )
    }

    /// The stop reason for a server error code that needs the user, if it does.
    pub fn for_error_code(code: ErrorCode) -> Option<Self> {
        Some(match code {
            ErrorCode::TokenRevoked => Self::TokenRevoked,
            ErrorCode::TokenExpired => Self::TokenExpired,
            ErrorCode::NotFound => Self::WorkspaceDeleted,
            ErrorCode::InvalidToken | ErrorCode::MissingToken => Self::InvalidToken,
            ErrorCode::Forbidden | ErrorCode::WrongWorkspace => Self::Forbidden,
            ErrorCode::PayloadTooLarge => Self::TooLarge,
            _ => return None,
        })
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_link_that_can_never_sync_again_blocks_edits() {
        use super::StopReason as R;
        let blocking: Vec<R> = R::ALL.into_iter().filter(|r| r.blocks_edits()).collect();
        assert!(blocking.contains(&R::TokenRevoked) && blocking.contains(&R::TokenExpired));
        // Local problems or ones the operator can fix keep the notebook editable here.
        for r in [R::StorageFull, R::TooLarge, R::ChainMismatch, R::ServerFork] {
            assert!(!r.blocks_edits(), "{r} keeps edits");
        }
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Msg {
        #[serde(default)]
        id: u64,
        bytes: Vec<u8>,
    }

    fn read(seen: &mut super::Seen, text: &str) -> Option<Msg> {
        seen.read_first(text, |t| serde_json::from_str(t).ok(), |m: &Msg| m.id)
    }

    #[test]
    fn a_message_heard_twice_is_read_once_and_the_repeat_is_dropped_by_its_id(
    ) -> Result<(), serde_json::Error> {
        let mut seen = super::Seen::default();
        let msg = Msg {
            id: 42,
            bytes: vec![1, 2, 3],
        };
        let text = serde_json::to_string(&msg)?;
        assert_eq!(
            super::leading_id(&text),
            Some(42),
            "read from the head of {text}"
        );
        assert_eq!(read(&mut seen, &text), Some(msg));
        assert_eq!(read(&mut seen, &text), None, "the second copy is a repeat");
        let other = serde_json::to_string(&Msg {
            id: 43,
            bytes: vec![],
        })?;
        assert!(read(&mut seen, &other).is_some());
        Ok(())
    }

    #[test]
    fn text_that_is_not_a_message_is_dropped_and_remembers_nothing() {
        let mut seen = super::Seen::default();
        for text in [
            "",
            "{",
            "{\"id\":",
            "{\"id\":12",
            "{\"id\":x,\"bytes\":[]}",
            "{\"id\":5,\"bytes\":7}",
        ] {
            assert_eq!(read(&mut seen, text), None, "{text}");
        }
        assert!(
            seen.first(5),
            "an id is remembered only with a message that decodes"
        );
        // Without an id (0) a message is never taken for a repeat; nor when the id is not first.
        assert!(read(&mut seen, "{\"bytes\":[]}").is_some());
        assert!(read(&mut seen, "{\"bytes\":[]}").is_some());
        assert!(read(&mut seen, "{\"bytes\":[],\"id\":77}").is_some());
        assert_eq!(
            read(&mut seen, "{\"bytes\":[],\"id\":77}"),
            None,
            "a repeat all the same"
        );
    }

    #[test]
    fn a_message_heard_twice_is_acted_on_once_and_old_ids_are_forgotten() {
        let mut seen = super::Seen::default();
        assert!(seen.first(7));
        assert!(!seen.first(7), "the second copy is a repeat");
        assert!(seen.first(0) && seen.first(0), "no id: never a repeat");
        for id in 100..100 + super::Seen::KEEP as u64 {
            assert!(seen.first(id));
        }
        assert!(seen.first(7), "forgotten after KEEP newer ids");
        assert!(!seen.first(100 + super::Seen::KEEP as u64 - 1));
    }

    use super::*;

    #[test]
    fn a_status_reads_as_the_js_packages_state_object() -> Result<(), serde_json::Error> {
        use serde_json::json;
        assert_eq!(SyncStatus::Offline.to_json(), json!({ "state": "offline" }));
        assert_eq!(
            SyncStatus::UpToDate { seq: 3 }.to_json(),
            json!({ "state": "up_to_date", "seq": 3 })
        );
        let stopped = SyncStatus::Stopped {
            reason: StopReason::TokenRevoked,
            message: "revoked".into(),
        };
        assert_eq!(
            stopped.to_json(),
            json!({ "state": "stopped", "reason": "token_revoked", "message": "revoked" })
        );
        // The wire form (externally tagged) round-trips.
        let back: SyncStatus = serde_json::from_str(&serde_json::to_string(&stopped)?)?;
        assert_eq!(back, stopped);
        Ok(())
    }

    fn update(seq: u64, prev: Chain, bytes: &[u8]) -> PullRecord {
        PullRecord {
            kind: PullRecordKind::Update,
            seq,
            chain: prev.next(bytes),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn a_page_verifies_skips_known_seqs_and_restarts_at_a_snapshot() -> Result<(), PageError> {
        let c1 = Chain::genesis().next(b"a");
        let r1 = update(1, Chain::genesis(), b"a");
        let r2 = update(2, c1, b"b");
        let both = [r1.clone(), r2.clone()];
        let page = verify_page(0, Chain::genesis(), &both)?;
        assert_eq!((page.seq, page.updates.len()), (2, 2));
        let again = verify_page(1, c1, &both)?;
        assert_eq!(again.updates, vec![&r2]);
        let snap = PullRecord {
            kind: PullRecordKind::Snapshot,
            seq: 5,
            chain: Chain::from_bytes([7; 32]),
            bytes: b"s".to_vec(),
        };
        let r6 = update(6, snap.chain, b"x");
        let later = [snap.clone(), r6.clone()];
        let page = verify_page(2, page.chain, &later)?;
        assert_eq!(page.snapshot, Some(&snap));
        assert_eq!((page.seq, page.chain), (6, r6.chain));
        Ok(())
    }

    #[test]
    fn gaps_and_tampering_are_refused() {
        let r1 = update(1, Chain::genesis(), b"a");
        let r3 = update(3, r1.chain, b"c");
        assert_eq!(
            verify_page(0, Chain::genesis(), &[r1.clone(), r3]),
            Err(PageError::OutOfOrder {
                expected: 2,
                got: 3
            })
        );
        let mut bad = r1;
        bad.bytes[0] ^= 1;
        assert!(matches!(
            verify_page(0, Chain::genesis(), &[bad]),
            Err(PageError::Chain(_))
        ));
    }

    #[test]
    fn batches_hold_at_least_one_update_and_respect_the_limit() {
        assert_eq!(batch_len(&[(10, 5000)], 100), 1);
        assert_eq!(batch_len(&[(10, 10), (10, 10), (10, 10)], 60), 2);
        assert_eq!(batch_len(&[], 60), 0);
        assert_eq!(batch_len(&[(1, 1), (1, 1)], 1000), 2);
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let d0 = b.next_delay_ms(0.0);
        let d1 = b.next_delay_ms(0.999);
        assert_eq!(d0, 250);
        assert!((500..=1000).contains(&d1));
        for _ in 0..30 {
            assert!(b.next_delay_ms(0.5) <= 30_000);
        }
        b.reset();
        assert_eq!(b.next_delay_ms(1.0), 500);
    }

    #[test]
    fn user_action_errors_map_to_stop_reasons_and_retryable_ones_do_not() {
        assert_eq!(
            StopReason::for_error_code(ErrorCode::TokenRevoked),
            Some(StopReason::TokenRevoked)
        );
        assert_eq!(
            StopReason::for_error_code(ErrorCode::PayloadTooLarge),
            Some(StopReason::TooLarge)
        );
        for code in [
            ErrorCode::RateLimited,
            ErrorCode::StorageUnavailable,
            ErrorCode::Internal,
            ErrorCode::Conflict,
        ] {
            assert_eq!(StopReason::for_error_code(code), None);
        }
    }

    #[test]
    fn stop_reasons_travel_under_their_documented_wire_names() -> Result<(), serde_json::Error> {
        let documented = [
            "token_revoked",
            "token_expired",
            "workspace_deleted",
            "invalid_token",
            "forbidden",
            "chain_mismatch",
            "storage_full",
            "too_large",
            "forgotten",
        ];
        for (reason, name) in StopReason::ALL.iter().zip(documented) {
            assert_eq!(serde_json::to_string(reason)?, format!("\"{name}\""));
            assert_eq!(reason.as_str(), name);
        }
        Ok(())
    }
}
