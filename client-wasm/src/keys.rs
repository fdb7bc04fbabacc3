//! A workspace's end-to-end encryption as this device applies it (`shared_schema::seal` holds the
//! format): updates and snapshots are sealed before they are stored for the server, and every
//! record read back (pulled, from another tab, this device's own pending) is opened before Loro
//! sees it. A notebook whose record has no [`KeyRing`] is a plain one (made before encryption
//! existed): its records pass through, and a sealed one cannot be read there.
//!
//! Keys and nonces come from the OS (`crypto.getRandomValues` in the browser), never from the
//! seedable generator of [`crate::ids`].

use crate::storage::WorkspaceRecord;
use shared_schema::seal::{
    self, KeyRing, SealError, Secret, Witness, KEY_LEN, NONCE_LEN, RECORD_NONCE_LEN,
};
use std::borrow::Cow;
use thiserror::Error;

/// The OS gave no random bytes.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("this browser gave no random numbers for a key ({0}); reload the page")]
pub struct NoRandom(pub String);

fn random<const N: usize>() -> Result<[u8; N], NoRandom> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|e| NoRandom(e.to_string()))?;
    Ok(out)
}

/// A fresh 32-byte secret.
pub fn fresh_secret() -> Result<Secret, NoRandom> {
    random::<KEY_LEN>().map(Secret::from_bytes)
}

/// A fresh nonce.
pub fn fresh_nonce() -> Result<[u8; NONCE_LEN], NoRandom> {
    random::<NONCE_LEN>()
}

/// The ring of a notebook created on this device: a new owner secret and epoch 1.
pub fn new_owner_ring() -> Result<KeyRing, NoRandom> {
    Ok(KeyRing::new_owner(fresh_secret()?, fresh_secret()?))
}

/// Bytes the document can import: a record opened with the notebook's keys, or a plain
/// notebook's record as it is. `seq` is the record's in the server's log (`None` for this
/// device's own pending update): a notebook that was plain before it had keys still reads the
/// plain records it had then ([`KeyRing::reads_plain`]).
pub fn readable<'a>(
    record: &WorkspaceRecord,
    bytes: &'a [u8],
    seq: Option<u64>,
) -> Result<Cow<'a, [u8]>, SealError> {
    opened(record, bytes, seq).map(|(b, _)| b)
}

/// [`readable`], with the witness of a sealed record.
pub fn opened<'a>(
    record: &WorkspaceRecord,
    bytes: &'a [u8],
    seq: Option<u64>,
) -> Result<(Cow<'a, [u8]>, Option<Witness>), SealError> {
    match &record.keys {
        None if seal::is_sealed(bytes) => Err(SealError::UnknownEpoch {
            epoch: seal::epoch_of(bytes).unwrap_or(0),
        }),
        None => Ok((Cow::Borrowed(bytes), None)),
        Some(ring) if !seal::is_sealed(bytes) && ring.reads_plain(seq) => {
            Ok((Cow::Borrowed(bytes), None))
        }
        Some(ring) => {
            seal::open(&record.id, ring, bytes).map(|o| (Cow::Owned(o.payload), Some(o.witness)))
        }
    }
}

/// True when a record's witness shows its author was shown another history by the server:
///
/// - it names a seq its own record could not follow in an honest log — an update is appended
///   after everything its author had pulled (`witness.seq < seq`), a compaction snapshot covers
///   exactly its author's cursor (`witness.seq <= seq`). A server that keeps a forked member's
///   log short, so the others' witnesses name seqs it never pulled, is caught by this;
/// - or it names a seq whose chain value this device knows and has otherwise (seq 0 is the empty
///   log's). A witness older than the kept history is not checked.
pub fn disagrees(record: &WorkspaceRecord, witness: &Witness, seq: u64, snapshot: bool) -> bool {
    let possible = if snapshot {
        witness.seq <= seq
    } else {
        witness.seq < seq
    };
    if !possible {
        return true;
    }
    if witness.seq == 0 {
        return !witness.agrees_with(&shared_schema::Chain::genesis());
    }
    record
        .recent_chains
        .iter()
        .find(|(s, _)| *s == witness.seq)
        .is_some_and(|(_, chain)| *chain != witness.chain)
}

/// Bytes to store for the server: `payload` sealed under the current epoch key, with this
/// device's last pulled seq and chain as the witness; a plain notebook's as they are.
pub fn sealed(record: &WorkspaceRecord, payload: Vec<u8>) -> Result<Vec<u8>, NoRandom> {
    let Some(key) = record.keys.as_ref().and_then(KeyRing::current) else {
        return Ok(payload);
    };
    let witness = Witness::new(record.last_pulled_seq, &record.chain_head);
    Ok(seal::seal(
        &record.id,
        key,
        witness,
        random::<RECORD_NONCE_LEN>()?,
        &payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_notebook_seals_and_opens_and_refuses_plain_records() -> Result<(), String> {
        let mut record = WorkspaceRecord::new_local("w", "n");
        record.keys = Some(new_owner_ring().map_err(|e| e.to_string())?);
        let stored = sealed(&record, b"loro update".to_vec()).map_err(|e| e.to_string())?;
        assert!(seal::is_sealed(&stored));
        assert_eq!(
            readable(&record, &stored, Some(1))
                .map_err(|e| e.to_string())?
                .as_ref(),
            b"loro update"
        );
        assert_eq!(
            readable(&record, b"loro plain", Some(1)),
            Err(SealError::NotSealed)
        );
        assert_eq!(
            readable(&record, b"loro plain", None),
            Err(SealError::NotSealed)
        );
        let plain = WorkspaceRecord::new_local("w", "n");
        assert!(readable(&plain, &stored, Some(1)).is_err());
        assert_eq!(
            sealed(&plain, b"x".to_vec()).map_err(|e| e.to_string())?,
            b"x"
        );
        Ok(())
    }

    #[test]
    fn a_notebook_encrypted_later_reads_its_plain_past_and_nothing_plain_after(
    ) -> Result<(), String> {
        let mut record = WorkspaceRecord::new_local("w", "n");
        let mut ring = new_owner_ring().map_err(|e| e.to_string())?;
        ring.plain_through = Some(5);
        record.keys = Some(ring);
        for (seq, reads) in [
            (Some(1), true),
            (Some(5), true),
            (None, true),
            (Some(6), false),
        ] {
            assert_eq!(
                readable(&record, b"loro plain", seq).is_ok(),
                reads,
                "{seq:?}"
            );
        }
        let stored = sealed(&record, b"loro new".to_vec()).map_err(|e| e.to_string())?;
        assert!(readable(&record, &stored, Some(2)).is_ok());
        Ok(())
    }

    #[test]
    fn two_seals_of_the_same_update_differ() -> Result<(), NoRandom> {
        let mut record = WorkspaceRecord::new_local("w", "n");
        record.keys = Some(new_owner_ring()?);
        assert_ne!(sealed(&record, vec![1])?, sealed(&record, vec![1])?);
        Ok(())
    }
}
