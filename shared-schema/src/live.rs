//! Records carried inline on the live channel (`docs/protocol.md`, "Live channel").
//!
//! The server puts an update of at most [`INLINE_MAX`] bytes into its live event as one encoded
//! pull-stream record — exactly the bytes a pull would return for that seq — so a device that is
//! up to date stores it without a second round trip. A receiver trusts an inline record no more
//! than a pulled one: [`accept`] takes it only when it is one update record, the next seq after
//! the receiver's cursor, and its chain verifies from the receiver's chain head. Anything else is
//! a reason to pull, never an error the user sees: a gap (events coalesced or missed), a damaged
//! or tampered record, a snapshot.

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
}

impl From<FrameError> for Refused {
    fn from(e: FrameError) -> Self {
        Refused::Damaged(e.to_string())
    }
}

/// The live event for update `seq` (with `chain` after it): inline when `bytes` is small.
pub fn event(seq: u64, chain: &Chain, bytes: &[u8]) -> LiveEvent {
    let record = (bytes.len() <= INLINE_MAX)
        .then(|| {
            let mut out = Vec::with_capacity(frame::PULL_HEADER_LEN + bytes.len());
            frame::encode_pull_record(&mut out, PullRecordKind::Update, seq, chain, bytes)
                .ok()
                .map(|()| base64::engine::general_purpose::STANDARD.encode(out))
        })
        .flatten();
    LiveEvent { seq, record }
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
        };
        assert!(matches!(
            accept(&garbage, 2, log[1].1),
            Err(Refused::Damaged(_))
        ));
        let short = LiveEvent {
            seq: 3,
            record: Some("AAAA".into()),
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
                    record: None
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
            record: None,
        })?;
        assert_eq!(plain, r#"{"seq":7}"#);
        let parsed: LiveEvent = serde_json::from_str(r#"{"seq":7}"#)?;
        assert_eq!(parsed.record, None);
        Ok(())
    }
}
