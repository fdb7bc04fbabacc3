//! The backup file (design §5): one self-describing file that both the server
//! (`GET …/backup`, `POST /v1/workspaces/import`) and the client (local export/import) read and write.
//!
//! Layout: `b"HEARTHB1" | header_len u32 | header JSON | pull-stream records` — the records are
//! exactly those of a pull from seq 0 ([`crate::frame`]): an optional snapshot first, then updates,
//! each with its chain value. [`decode`] checks the chain of every update and the header's head.

use crate::chain::{Chain, ChainError};
use crate::frame::{self, FrameError, PullRecord, PullRecordKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// File magic, including the format version.
pub const MAGIC: &[u8; 8] = b"HEARTHB1";

/// The header of a backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// Id of the workspace the backup was taken from.
    pub workspace_id: String,
    /// When the backup was taken, seconds since the Unix epoch.
    pub created_at: u64,
    /// The last seq in the file.
    pub head_seq: u64,
    /// The chain at `head_seq`.
    pub chain_head: Chain,
    /// Who wrote it: `server` or `client`.
    pub source: String,
    /// The notebook's keys protected by a passphrase (`seal::protect`, base64), when the user
    /// asked for a backup that carries them; its records are then sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
}

/// A decoded, verified backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The header.
    pub header: BackupHeader,
    /// Snapshot (if any) then updates, in seq order.
    pub records: Vec<PullRecord>,
}

/// A backup file could not be read.
#[derive(Debug, Error)]
pub enum BackupError {
    /// Not a Hearth backup (wrong magic) or from a newer format.
    #[error("this is not a Hearth backup file (or it is from a newer version)")]
    NotABackup,
    /// The header is not valid JSON of the expected shape.
    #[error("the backup header is damaged: {0}")]
    Header(String),
    /// A record is damaged.
    #[error("the backup body is damaged: {0}")]
    Frame(#[from] FrameError),
    /// Chain values do not match the bytes.
    #[error("the backup failed its integrity check: {0}")]
    Chain(#[from] ChainError),
    /// Seqs are out of order or the header's head does not match the records.
    #[error("the backup is inconsistent: {0}")]
    Inconsistent(String),
}

/// Encodes a backup file.
pub fn encode(header: &BackupHeader, records: &[PullRecord]) -> Result<Vec<u8>, BackupError> {
    let json = serde_json::to_vec(header).map_err(|e| BackupError::Header(e.to_string()))?;
    let len = u32::try_from(json.len()).map_err(|_| BackupError::Header("too large".into()))?;
    let mut out = Vec::with_capacity(
        12 + json.len()
            + records
                .iter()
                .map(|r| frame::PULL_HEADER_LEN + r.bytes.len())
                .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    for r in records {
        frame::encode_pull_record(&mut out, r.kind, r.seq, &r.chain, &r.bytes)?;
    }
    Ok(out)
}

/// Decodes and verifies a backup file.
pub fn decode(input: &[u8]) -> Result<Backup, BackupError> {
    if input.len() < 12 || &input[..8] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&input[8..12]);
    let len = u32::from_be_bytes(len_bytes) as usize;
    let body_start = 12usize
        .checked_add(len)
        .filter(|end| *end <= input.len())
        .ok_or_else(|| BackupError::Header("truncated".into()))?;
    let header: BackupHeader = serde_json::from_slice(&input[12..body_start])
        .map_err(|e| BackupError::Header(e.to_string()))?;
    let records = frame::decode_pull_stream(&input[body_start..])?;
    verify(&header, &records)?;
    Ok(Backup { header, records })
}

/// Checks that records are a snapshot (optional, first) then consecutive updates whose chain
/// values follow from their bytes, ending at the header's head.
pub fn verify(header: &BackupHeader, records: &[PullRecord]) -> Result<(), BackupError> {
    let mut chain = Chain::genesis();
    let mut seq = 0u64;
    for (i, r) in records.iter().enumerate() {
        match r.kind {
            _ if r.seq > crate::log::MAX_SEQ => {
                return Err(BackupError::Inconsistent(format!(
                    "seq {} is past the largest seq a workspace can hold ({})",
                    r.seq,
                    crate::log::MAX_SEQ
                )))
            }
            PullRecordKind::Snapshot if i == 0 => {
                chain = r.chain;
                seq = r.seq;
            }
            PullRecordKind::Snapshot => {
                return Err(BackupError::Inconsistent(format!(
                    "snapshot at position {i}; only the first record may be a snapshot"
                )))
            }
            PullRecordKind::Update => {
                if seq.checked_add(1) != Some(r.seq) {
                    return Err(BackupError::Inconsistent(format!(
                        "seq {} follows seq {seq}",
                        r.seq
                    )));
                }
                chain = chain.verify_next(r.seq, &r.bytes, &r.chain)?;
                seq = r.seq;
            }
        }
    }
    if seq != header.head_seq || chain != header.chain_head {
        return Err(BackupError::Inconsistent(format!(
            "the header says head {} but the records end at {seq}",
            header.head_seq
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BackupHeader, Vec<PullRecord>) {
        let snap_chain = Chain::genesis().next(b"1").next(b"2");
        let c3 = snap_chain.next(b"three");
        let c4 = c3.next(b"four");
        let records = vec![
            PullRecord {
                kind: PullRecordKind::Snapshot,
                seq: 2,
                chain: snap_chain,
                bytes: b"snapshot".to_vec(),
            },
            PullRecord {
                kind: PullRecordKind::Update,
                seq: 3,
                chain: c3,
                bytes: b"three".to_vec(),
            },
            PullRecord {
                kind: PullRecordKind::Update,
                seq: 4,
                chain: c4,
                bytes: b"four".to_vec(),
            },
        ];
        let header = BackupHeader {
            workspace_id: "ws".into(),
            created_at: 5,
            head_seq: 4,
            chain_head: c4,
            source: "server".into(),
            keys: None,
        };
        (header, records)
    }

    #[test]
    fn a_backup_round_trips() -> Result<(), BackupError> {
        let (header, records) = sample();
        let bytes = encode(&header, &records)?;
        let back = decode(&bytes)?;
        assert_eq!(back.header, header);
        assert_eq!(back.records, records);
        Ok(())
    }

    #[test]
    fn a_flipped_byte_in_an_update_fails_the_chain() -> Result<(), BackupError> {
        let (header, records) = sample();
        let mut bytes = encode(&header, &records)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(decode(&bytes), Err(BackupError::Chain(_))));
        Ok(())
    }

    #[test]
    fn garbage_and_truncation_are_rejected() -> Result<(), BackupError> {
        assert!(matches!(decode(b"nope"), Err(BackupError::NotABackup)));
        let (header, records) = sample();
        let bytes = encode(&header, &records)?;
        assert!(decode(&bytes[..bytes.len() - 2]).is_err());
        assert!(decode(&bytes[..20]).is_err());
        Ok(())
    }

    #[test]
    fn seqs_past_the_largest_storable_seq_are_refused_not_a_panic() -> Result<(), BackupError> {
        for (snap_seq, update_seq) in [
            (u64::MAX, None),
            (u64::MAX - 1, Some(u64::MAX)),
            ((1 << 63) + 5, None),
        ] {
            let snap_chain = Chain::genesis().next(b"s");
            let mut records = vec![PullRecord {
                kind: PullRecordKind::Snapshot,
                seq: snap_seq,
                chain: snap_chain,
                bytes: b"snapshot".to_vec(),
            }];
            let (mut head, mut chain) = (snap_seq, snap_chain);
            if let Some(seq) = update_seq {
                chain = chain.next(b"u");
                head = seq;
                records.push(PullRecord {
                    kind: PullRecordKind::Update,
                    seq,
                    chain,
                    bytes: b"u".to_vec(),
                });
            }
            let header = BackupHeader {
                workspace_id: "ws".into(),
                created_at: 5,
                head_seq: head,
                chain_head: chain,
                source: "client".into(),
                keys: None,
            };
            let bytes = encode(&header, &records)?;
            assert!(
                matches!(decode(&bytes), Err(BackupError::Inconsistent(_))),
                "snapshot at {snap_seq} must be refused"
            );
        }
        Ok(())
    }
}
