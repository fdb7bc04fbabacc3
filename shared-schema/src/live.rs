//! Records carried inline on the live channel (`docs/protocol.md`, "Live channel").
//!
//! The server puts an update of at most [`INLINE_MAX`] bytes into its live event as one encoded
//! pull-stream record — exactly the bytes a pull would return for that seq — so a device that is
//! up to date gets it without a second round trip. A receiver trusts an inline record no more
//! than a pulled one: [`accept`] takes it only when it is one update record, the next seq after
//! the receiver's cursor, and its chain verifies from the receiver's chain head. Anything else is
//! a reason to pull, never an error the user sees: a gap (events coalesced or missed), a damaged
//! or tampered record, a snapshot.
//!
//! **Tentative records.** The server sends a push's records ([`tentative`]) as soon as its
//! writer has given them their seqs, while the commit is still being made durable, and a marker
//! ([`marker`]: the seq and the chain after it) once it is. The pusher is answered only after the
//! commit, so nothing is acknowledged before it is durable; the other members see the edit one
//! disk flush earlier. A receiver may show a tentative record (its chain verifies, so it is what
//! the pusher sent and what the server is storing) but keeps it in [`Held`], one per stream, and
//! stores it only when a marker's chain equals the chain after it — the chain commits to every
//! record before it, so those are exactly the records the server made durable. A commit that
//! fails sends no marker: the held records are replaced by the next tentative records for those
//! seqs, or dropped by the next marker, and a pull fetches what the server really stored. So a
//! server that crashes between the two can never make a receiver store a record it forgot (which
//! its chain check would later report as a forked server); the edit itself is not lost either,
//! since its author keeps it until the acknowledgement.

use crate::api::LiveEvent;
use crate::chain::{Chain, ChainError};
use crate::frame::{self, FrameError, PullRecord, PullRecordKind};
use base64::Engine as _;
use thiserror::Error;

/// Largest update (bytes of the Loro update) sent inline; larger ones are announced by seq only.
pub const INLINE_MAX: usize = 16 * 1024;

/// Why an inline record was not taken (the receiver pulls instead).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    /// The event carries no record (a large update, or several coalesced).
    #[error("no inline record")]
    Absent,
    /// The base64 or the record frame is damaged.
    #[error("damaged inline record: {0}")]
    Damaged(String),
    /// Not exactly one update record.
    #[error("an inline record must be one update")]
    NotOneUpdate,
    /// The record's seq is not the event's seq.
    #[error("inline record for seq {record} in an event for seq {event}")]
    SeqMismatch {
        /// The event's seq.
        event: u64,
        /// The record's seq.
        record: u64,
    },
    /// The record does not follow the receiver's cursor (a gap, or already stored).
    #[error("inline record for seq {got} while the next is {expected}")]
    NotNext {
        /// Cursor + 1.
        expected: u64,
        /// The record's seq.
        got: u64,
    },
    /// The chain does not verify.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// More tentative records than [`HELD_MAX`] wait for their marker.
    #[error("too many tentative records held: pull instead")]
    TooManyHeld,
}

impl From<FrameError> for Refused {
    fn from(e: FrameError) -> Self {
        Refused::Damaged(e.to_string())
    }
}

/// The live event for update `seq` (with `chain` after it), already durable: inline when `bytes`
/// is small.
pub fn event(seq: u64, chain: &Chain, bytes: &[u8]) -> LiveEvent {
    let record = (bytes.len() <= INLINE_MAX)
        .then(|| {
            let mut out = Vec::with_capacity(frame::PULL_HEADER_LEN + bytes.len());
            frame::encode_pull_record(&mut out, PullRecordKind::Update, seq, chain, bytes)
                .ok()
                .map(|()| base64::engine::general_purpose::STANDARD.encode(out))
        })
        .flatten();
    LiveEvent {
        seq,
        record,
        ..LiveEvent::default()
    }
}

/// The tentative event for update `seq` (not yet durable), or `None` when it is too large to
/// carry (the marker then makes receivers pull it).
pub fn tentative(seq: u64, chain: &Chain, bytes: &[u8]) -> Option<LiveEvent> {
    let mut e = event(seq, chain, bytes);
    e.record.as_ref()?;
    e.tentative = true;
    Some(e)
}

/// The marker sent once the updates up to `seq` are durable; `chain` is the chain after `seq`.
pub fn marker(seq: u64, chain: Chain) -> LiveEvent {
    LiveEvent {
        seq,
        chain: Some(chain),
        ..LiveEvent::default()
    }
}

/// Most tentative records a stream holds; past that the receiver drops them and pulls.
pub const HELD_MAX: usize = 64;

/// The tentative records one live stream holds until a marker confirms them (see the module
/// header). A new stream starts a new one: what an old stream held is never confirmed by
/// another's marker.
#[derive(Debug, Default)]
pub struct Held {
    /// (chain before it, record), consecutive seqs, each chaining from the one before.
    records: Vec<(Chain, PullRecord)>,
}

impl Held {
    /// Holds the record of tentative `event` when it follows the last held record, or the
    /// receiver's cursor (`seq`, `chain`). A record for a seq already held replaces it and every
    /// held record after it (the commit that sent them failed, and the writer gave their seqs
    /// again). Returns the record to show; `Err` when it is not taken (and is not shown).
    pub fn hold(
        &mut self,
        event: &LiveEvent,
        seq: u64,
        chain: Chain,
    ) -> Result<&PullRecord, Refused> {
        self.records
            .retain(|(_, r)| r.seq > seq && r.seq < event.seq);
        let (after, head) = self
            .records
            .last()
            .map(|(_, r)| (r.seq, r.chain))
            .unwrap_or((seq, chain));
        let record = accept(event, after, head)?;
        if self.records.len() >= HELD_MAX {
            self.records.clear();
            return Err(Refused::TooManyHeld);
        }
        self.records.push((head, record));
        Ok(&self.records[self.records.len() - 1].1)
    }

    /// The held records `marker` confirms for a receiver whose cursor is (`seq`, `chain`): those
    /// after the cursor up to the marker's seq, when the one at that seq has the marker's chain and
    /// the first follows the cursor. Everything held up to the marker's seq leaves the buffer
    /// either way; an empty answer means the receiver pulls if it is behind.
    pub fn confirm(&mut self, marker: &LiveEvent, seq: u64, chain: Chain) -> Vec<PullRecord> {
        self.records.retain(|(_, r)| r.seq > seq);
        let Some(end) = self.records.iter().position(|(_, r)| r.seq == marker.seq) else {
            self.records.retain(|(_, r)| r.seq > marker.seq);
            return Vec::new();
        };
        let follows = self
            .records
            .first()
            .is_some_and(|(prev, r)| Some(r.seq) == seq.checked_add(1) && *prev == chain);
        let confirmed = follows && marker.chain == Some(self.records[end].1.chain);
        let taken: Vec<PullRecord> = self.records.drain(..=end).map(|(_, r)| r).collect();
        if confirmed {
            taken
        } else {
            self.records.clear();
            Vec::new()
        }
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// The record of `event` if a receiver whose cursor is (`seq`, `chain`) may store it as the next
/// pulled record; otherwise why not (and the receiver pulls).
pub fn accept(event: &LiveEvent, seq: u64, chain: Chain) -> Result<PullRecord, Refused> {
    let Some(text) = &event.record else {
        return Err(Refused::Absent);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Refused::Damaged(e.to_string()))?;
    let mut records = frame::decode_pull_stream(&bytes)?;
    if records.len() != 1 || records[0].kind != PullRecordKind::Update {
        return Err(Refused::NotOneUpdate);
    }
    let record = records.remove(0);
    if record.seq != event.seq {
        return Err(Refused::SeqMismatch {
            event: event.seq,
            record: record.seq,
        });
    }
    if Some(record.seq) != seq.checked_add(1) {
        return Err(Refused::NotNext {
            expected: seq.saturating_add(1),
            got: record.seq,
        });
    }
    chain.verify_next(record.seq, &record.bytes, &record.chain)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn log(n: u64) -> Vec<(u64, Chain, Vec<u8>)> {
        let mut chain = Chain::genesis();
        (1..=n)
            .map(|seq| {
                let bytes = vec![seq as u8; 10];
                chain = chain.next(&bytes);
                (seq, chain, bytes)
            })
            .collect()
    }

    #[test]
    fn the_next_update_is_accepted_with_the_bytes_a_pull_would_return() -> R {
        let log = log(2);
        let (seq, chain, bytes) = &log[1];
        let e = event(*seq, chain, bytes);
        let record = accept(&e, 1, log[0].1)?;
        assert_eq!(
            (record.seq, &record.chain, &record.bytes),
            (2, chain, bytes)
        );
        let mut pulled = Vec::new();
        frame::encode_pull_record(&mut pulled, PullRecordKind::Update, 2, chain, bytes)?;
        assert_eq!(frame::decode_pull_stream(&pulled)?, vec![record]);
        Ok(())
    }

    #[test]
    fn a_gap_an_old_record_a_tampered_record_and_garbage_are_refused() {
        let log = log(3);
        let (seq, chain, bytes) = &log[2];
        let e = event(*seq, chain, bytes);
        assert!(matches!(
            accept(&e, 1, log[0].1),
            Err(Refused::NotNext {
                expected: 2,
                got: 3
            })
        ));
        assert!(matches!(
            accept(&e, 3, log[2].1),
            Err(Refused::NotNext { .. })
        ));
        let tampered = event(*seq, chain, b"not what was stored");
        assert!(matches!(
            accept(&tampered, 2, log[1].1),
            Err(Refused::Chain(_))
        ));
        let wrong_head = accept(&e, 2, log[0].1);
        assert!(matches!(wrong_head, Err(Refused::Chain(_))));
        let garbage = LiveEvent {
            seq: 3,
            record: Some("%%%".into()),
            ..LiveEvent::default()
        };
        assert!(matches!(
            accept(&garbage, 2, log[1].1),
            Err(Refused::Damaged(_))
        ));
        let short = LiveEvent {
            seq: 3,
            record: Some("AAAA".into()),
            ..LiveEvent::default()
        };
        assert!(matches!(
            accept(&short, 2, log[1].1),
            Err(Refused::Damaged(_))
        ));
        let relabelled = LiveEvent {
            seq: 4,
            ..e.clone()
        };
        assert!(matches!(
            accept(&relabelled, 3, log[2].1),
            Err(Refused::SeqMismatch { .. })
        ));
        assert_eq!(
            accept(
                &LiveEvent {
                    seq: 3,
                    ..LiveEvent::default()
                },
                2,
                log[1].1
            ),
            Err(Refused::Absent)
        );
    }

    #[test]
    fn a_large_update_is_announced_by_seq_only() {
        let big = vec![0u8; INLINE_MAX + 1];
        let chain = Chain::genesis().next(&big);
        assert_eq!(event(1, &chain, &big).record, None);
        assert!(event(1, &chain, &big[..INLINE_MAX]).record.is_some());
    }

    #[test]
    fn events_serialize_as_the_protocol_documents() -> R {
        let plain = serde_json::to_string(&LiveEvent {
            seq: 7,
            ..LiveEvent::default()
        })?;
        assert_eq!(plain, r#"{"seq":7}"#);
        let parsed: LiveEvent = serde_json::from_str(r#"{"seq":7}"#)?;
        assert_eq!(
            parsed,
            LiveEvent {
                seq: 7,
                ..LiveEvent::default()
            }
        );
        let log = log(1);
        let t = tentative(1, &log[0].1, &log[0].2).ok_or("small")?;
        let json = serde_json::to_string(&t)?;
        assert!(
            json.starts_with(r#"{"seq":1,"record":""#) && json.ends_with(r#"","tentative":true}"#)
        );
        let m = serde_json::to_string(&marker(1, log[0].1))?;
        assert_eq!(m, format!(r#"{{"seq":1,"chain":"{}"}}"#, log[0].1.to_hex()));
        assert_eq!(serde_json::from_str::<LiveEvent>(&m)?, marker(1, log[0].1));
        Ok(())
    }

    fn held_seqs(held: &Held) -> Vec<u64> {
        held.records.iter().map(|(_, r)| r.seq).collect()
    }

    #[test]
    fn tentative_records_are_stored_only_when_a_marker_with_their_chain_confirms_them() -> R {
        let log = log(4);
        let mut held = Held::default();
        for (seq, chain, bytes) in &log[1..3] {
            let e = tentative(*seq, chain, bytes).ok_or("small")?;
            assert_eq!(held.hold(&e, 1, log[0].1)?.seq, *seq);
        }
        assert_eq!(held_seqs(&held), vec![2, 3]);
        // A marker for an earlier seq confirms what it covers and keeps the rest.
        let first = held.confirm(&marker(2, log[1].1), 1, log[0].1);
        assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2]);
        assert_eq!(held_seqs(&held), vec![3]);
        let second = held.confirm(&marker(3, log[2].1), 2, log[1].1);
        assert_eq!(
            (second.len(), second[0].bytes.clone()),
            (1, log[2].2.clone())
        );
        assert!(held.is_empty());
        // A large update is never tentative: its marker makes the receiver pull.
        assert_eq!(tentative(1, &log[0].1, &vec![0; INLINE_MAX + 1]), None);
        Ok(())
    }

    #[test]
    fn a_failed_commit_never_gets_its_tentative_records_stored() -> R {
        let log = log(2);
        // The server sent seq 2 tentatively, its commit failed, and seq 2 became another update.
        let lost = Chain::genesis().next(&log[0].2);
        let lost_bytes = b"the lost update".to_vec();
        let lost_chain = lost.next(&lost_bytes);
        let mut held = Held::default();
        held.hold(
            &tentative(2, &lost_chain, &lost_bytes).ok_or("small")?,
            1,
            log[0].1,
        )?;
        // Its marker never comes; the marker of the update that did get seq 2 does not match.
        assert!(held.confirm(&marker(2, log[1].1), 1, log[0].1).is_empty());
        assert!(held.is_empty());
        // The retried batch's tentative record for the same seq replaces the held one.
        held.hold(
            &tentative(2, &lost_chain, &lost_bytes).ok_or("small")?,
            1,
            log[0].1,
        )?;
        held.hold(
            &tentative(2, &log[1].1, &log[1].2).ok_or("small")?,
            1,
            log[0].1,
        )?;
        assert_eq!(held.confirm(&marker(2, log[1].1), 1, log[0].1).len(), 1);
        // A marker past what is held (a commit whose records were not sent) drops them: pull.
        held.hold(
            &tentative(2, &lost_chain, &lost_bytes).ok_or("small")?,
            1,
            log[0].1,
        )?;
        assert!(held
            .confirm(&marker(3, Chain::genesis()), 1, log[0].1)
            .is_empty());
        assert!(held.is_empty());
        // A seq-only event (another process's commit, a lagging stream) confirms nothing.
        held.hold(
            &tentative(2, &log[1].1, &log[1].2).ok_or("small")?,
            1,
            log[0].1,
        )?;
        let seq_only = LiveEvent {
            seq: 2,
            ..LiveEvent::default()
        };
        assert!(held.confirm(&seq_only, 1, log[0].1).is_empty());
        Ok(())
    }

    #[test]
    fn held_records_follow_the_cursor_and_refuse_tampering_and_floods() -> R {
        let log = log(3);
        let mut held = Held::default();
        let e3 = tentative(3, &log[2].1, &log[2].2).ok_or("small")?;
        assert!(matches!(
            held.hold(&e3, 1, log[0].1),
            Err(Refused::NotNext { .. })
        ));
        let forged = tentative(2, &log[1].1, b"forged").ok_or("small")?;
        assert!(matches!(
            held.hold(&forged, 1, log[0].1),
            Err(Refused::Chain(_))
        ));
        assert!(held.is_empty());
        // Held seq 2, then a pull stored 2 and 3: the marker for 3 finds nothing to store.
        held.hold(
            &tentative(2, &log[1].1, &log[1].2).ok_or("small")?,
            1,
            log[0].1,
        )?;
        assert!(held.confirm(&marker(3, log[2].1), 3, log[2].1).is_empty());
        // Held seq 2 from cursor 1, but the cursor moved to another seq 1: not confirmed.
        held.hold(
            &tentative(2, &log[1].1, &log[1].2).ok_or("small")?,
            1,
            log[0].1,
        )?;
        assert!(held
            .confirm(&marker(2, log[1].1), 1, Chain::genesis())
            .is_empty());
        // A flood of tentative records past HELD_MAX is dropped, not buffered without end.
        let mut chain = Chain::genesis();
        let mut refused = false;
        for seq in 1..=(HELD_MAX as u64 + 1) {
            let bytes = vec![1u8; 4];
            chain = chain.next(&bytes);
            let e = tentative(seq, &chain, &bytes).ok_or("small")?;
            refused |= matches!(
                held.hold(&e, 0, Chain::genesis()),
                Err(Refused::TooManyHeld)
            );
        }
        assert!(refused && held.len() < HELD_MAX);
        Ok(())
    }
}
