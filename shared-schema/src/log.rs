//! The server's log rules, I/O-free: the SQL stores and the client's fault simulation both run
//! these, so there is one statement of how a batch gets its seqs, how keys are deduplicated, how a
//! pull page is cut and which snapshots are accepted.
//!
//! - [`assign_batch`]: each record gets the next seq and chain value, unless its idempotency key is
//!   already stored (its original seq) or repeated earlier in the batch (the first one's seq).
//! - [`check_covers`]: a snapshot may cover only stored seqs, and never less than the stored one.
//! - [`page_admits`]: a pull page is cut by bytes (record headers counted) but holds ≥ 1 record.

use crate::chain::Chain;
use crate::frame::PushRecord;
use std::collections::HashMap;
use thiserror::Error;

/// Bytes of a pull record's header: `kind u8 | seq u64 | chain [32] | len u32`.
pub const PULL_RECORD_HEADER: usize = 1 + 8 + 32 + 4;

/// Largest seq the log hands out (seqs are stored as signed 64-bit integers).
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// Most records in one push batch (clients cut batches at this count).
pub const MAX_BATCH_RECORDS: usize = 1024;

/// Most records in one pull page.
pub const MAX_PAGE_RECORDS: usize = 4096;

/// Longest idempotency key, bytes.
pub const MAX_KEY_LEN: usize = 128;

/// A log rule refused the request.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum LogError {
    /// The workspace has no seqs left.
    #[error("the workspace's sequence numbers are exhausted (head {head})")]
    SeqOverflow {
        /// The head seq.
        head: u64,
    },
    /// A snapshot claims to cover seqs the server does not have.
    #[error("covers={covers} is past the head seq {head}: pull first")]
    CoversPastHead {
        /// Requested covers.
        covers: u64,
        /// Head seq.
        head: u64,
    },
    /// A push batch breaks a batch rule.
    #[error("{0}")]
    BadBatch(String),
    /// A newer snapshot is already stored.
    #[error("a newer snapshot (covers={stored}) is already stored")]
    OlderThanStored {
        /// Requested covers.
        covers: u64,
        /// Covers of the stored snapshot.
        stored: u64,
    },
}

/// A record of a batch that is new to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// Its index in the batch.
    pub index: usize,
    /// Its seq.
    pub seq: u64,
    /// The chain after it.
    pub chain: Chain,
}

/// What a batch does to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The seq of every record of the batch, in batch order.
    pub seqs: Vec<u64>,
    /// The records to store, in seq order.
    pub fresh: Vec<Fresh>,
    /// Head seq after the batch.
    pub head: u64,
    /// Chain at the new head.
    pub chain: Chain,
}

/// Assigns seqs and chain values to a batch, given the log's head and chain and the seqs of the
/// batch's keys that are already stored (`known`).
pub fn assign_batch(
    head: u64,
    chain: Chain,
    records: &[PushRecord],
    known: &HashMap<Vec<u8>, u64>,
) -> Result<Assigned, LogError> {
    let mut out = Assigned {
        seqs: Vec::with_capacity(records.len()),
        fresh: Vec::new(),
        head,
        chain,
    };
    let mut in_batch: HashMap<&[u8], u64> = HashMap::new();
    for (index, r) in records.iter().enumerate() {
        if let Some(seq) = known
            .get(&r.key)
            .copied()
            .or_else(|| in_batch.get(r.key.as_slice()).copied())
        {
            out.seqs.push(seq);
            continue;
        }
        let seq = out
            .head
            .checked_add(1)
            .filter(|s| *s <= MAX_SEQ)
            .ok_or(LogError::SeqOverflow { head: out.head })?;
        out.head = seq;
        out.chain = out.chain.next(&r.bytes);
        in_batch.insert(&r.key, seq);
        out.fresh.push(Fresh {
            index,
            seq,
            chain: out.chain,
        });
        out.seqs.push(seq);
    }
    Ok(out)
}

/// Checks a push batch before it is stored: 1–[`MAX_BATCH_RECORDS`] records, each with a key of
/// 1–[`MAX_KEY_LEN`] bytes and a non-empty update.
pub fn check_batch(records: &[PushRecord]) -> Result<(), LogError> {
    if records.is_empty() {
        return Err(LogError::BadBatch("the batch holds no update".into()));
    }
    if records.len() > MAX_BATCH_RECORDS {
        return Err(LogError::BadBatch(format!(
            "the batch holds {} updates; send at most {MAX_BATCH_RECORDS} per request",
            records.len()
        )));
    }
    for (i, r) in records.iter().enumerate() {
        if r.bytes.is_empty() {
            return Err(LogError::BadBatch(format!(
                "update {i} of the batch is empty"
            )));
        }
        if r.key.is_empty() || r.key.len() > MAX_KEY_LEN {
            return Err(LogError::BadBatch(format!(
                "update {i} has a key of {} bytes; keys are 1–{MAX_KEY_LEN} bytes",
                r.key.len()
            )));
        }
    }
    Ok(())
}

/// Checks a snapshot upload: `covers` must be stored (≤ head) and not older than the stored one.
pub fn check_covers(covers: u64, head: u64, stored: u64) -> Result<(), LogError> {
    if covers > head {
        return Err(LogError::CoversPastHead { covers, head });
    }
    if covers < stored {
        return Err(LogError::OlderThanStored { covers, stored });
    }
    Ok(())
}

/// Whether a record of `len` bytes still goes into a page that holds `count` records of `size`
/// bytes (headers included) under `limit`: the first record always does.
pub fn page_admits(count: usize, size: usize, len: usize, limit: usize) -> bool {
    count == 0 || size.saturating_add(PULL_RECORD_HEADER + len) <= limit
}

/// The bytes a record adds to a page.
pub fn record_size(len: usize) -> usize {
    PULL_RECORD_HEADER + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_oversized_and_unkeyed_batches_are_refused() {
        assert!(check_batch(&[]).is_err());
        assert!(check_batch(&[rec("k", b"")]).is_err());
        assert!(check_batch(&[rec("", b"x")]).is_err());
        assert!(check_batch(&vec![rec("k", b"x"); MAX_BATCH_RECORDS + 1]).is_err());
        assert!(check_batch(&vec![rec("k", b"x"); MAX_BATCH_RECORDS]).is_ok());
    }

    fn rec(key: &str, bytes: &[u8]) -> PushRecord {
        PushRecord {
            key: key.as_bytes().to_vec(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn a_batch_gets_consecutive_seqs_and_known_or_repeated_keys_keep_theirs() -> Result<(), LogError>
    {
        let known = HashMap::from([(b"old".to_vec(), 3u64)]);
        let batch = [
            rec("a", b"1"),
            rec("old", b"x"),
            rec("a", b"1"),
            rec("b", b"2"),
        ];
        let out = assign_batch(5, Chain::genesis(), &batch, &known)?;
        assert_eq!(out.seqs, vec![6, 3, 6, 7]);
        assert_eq!(out.head, 7);
        assert_eq!(out.fresh.len(), 2);
        assert_eq!(out.chain, Chain::genesis().next(b"1").next(b"2"));
        Ok(())
    }

    #[test]
    fn seqs_never_pass_i64_max() {
        let err = assign_batch(
            MAX_SEQ,
            Chain::genesis(),
            &[rec("a", b"1")],
            &HashMap::new(),
        );
        assert_eq!(err, Err(LogError::SeqOverflow { head: MAX_SEQ }));
        let err = assign_batch(
            u64::MAX,
            Chain::genesis(),
            &[rec("a", b"1")],
            &HashMap::new(),
        );
        assert!(err.is_err());
    }

    #[test]
    fn covers_must_be_stored_and_not_older_than_the_stored_snapshot() {
        assert_eq!(check_covers(3, 5, 2), Ok(()));
        assert_eq!(check_covers(5, 5, 5), Ok(()));
        assert!(matches!(
            check_covers(6, 5, 0),
            Err(LogError::CoversPastHead { .. })
        ));
        assert!(matches!(
            check_covers(1, 5, 2),
            Err(LogError::OlderThanStored { .. })
        ));
    }

    #[test]
    fn a_page_counts_headers_and_always_holds_one_record() {
        assert!(page_admits(0, 0, 10_000, 10));
        assert!(page_admits(1, 100, 55, 200));
        assert!(!page_admits(1, 100, 56, 200));
    }
}
