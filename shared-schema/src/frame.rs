//! Binary frames of the sync protocol (design §3). All integers are big-endian.
//!
//! - Push batch (client → server), one or more records:
//!   `key_len u8 | key (1–64 bytes) | len u32 | update bytes`.
//! - Pull stream (server → client), zero or more records:
//!   `kind u8 | seq u64 | chain [32] | len u32 | bytes`, kind 0 = update, 1 = snapshot.
//!
//! Decoding never panics and never allocates more than the input holds: a record that claims more
//! bytes than remain is reported as truncated.

use crate::chain::Chain;
use thiserror::Error;

/// Longest idempotency key a push record may carry.
pub const MAX_KEY_LEN: usize = 64;

/// A frame could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The batch holds no record at all.
    #[error("the batch is empty: send at least one record")]
    Empty,
    /// A record ends before its declared length.
    #[error("record {index} is truncated at byte {offset}: resend the whole batch")]
    Truncated {
        /// Index of the record in the batch.
        index: usize,
        /// Byte offset where input ran out.
        offset: usize,
    },
    /// An idempotency key is empty or longer than 64 bytes.
    #[error("record {index} has an idempotency key of {len} bytes; keys are 1–64 bytes")]
    BadKeyLength {
        /// Index of the record in the batch.
        index: usize,
        /// The declared key length.
        len: usize,
    },
    /// A pull record has an unknown kind byte.
    #[error("record {index} has unknown kind {kind}; upgrade the client")]
    UnknownKind {
        /// Index of the record in the stream.
        index: usize,
        /// The kind byte seen.
        kind: u8,
    },
    /// An update is larger than a u32 length can say.
    #[error("an update of {len} bytes is too large for one record")]
    TooLarge {
        /// Length of the update.
        len: usize,
    },
}

/// One update in a push batch, with the client's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    /// Idempotency key, 1–64 bytes, unique per workspace.
    pub key: Vec<u8>,
    /// Opaque Loro update bytes.
    pub bytes: Vec<u8>,
}

/// Appends one push record to `out`.
pub fn encode_push_record(out: &mut Vec<u8>, key: &[u8], bytes: &[u8]) -> Result<(), FrameError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(FrameError::BadKeyLength {
            index: 0,
            len: key.len(),
        });
    }
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge { len: bytes.len() })?;
    out.reserve(1 + key.len() + 4 + bytes.len());
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Encodes a whole push batch.
pub fn encode_push_batch(records: &[PushRecord]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    for record in records {
        encode_push_record(&mut out, &record.key, &record.bytes)?;
    }
    Ok(out)
}

/// Decodes a push batch. Fails on an empty batch, a bad key length or any truncation.
pub fn decode_push_batch(input: &[u8]) -> Result<Vec<PushRecord>, FrameError> {
    let mut reader = Reader { input, pos: 0 };
    let mut records = Vec::new();
    while !reader.done() {
        let index = records.len();
        let key_len = reader.u8(index)? as usize;
        if key_len == 0 || key_len > MAX_KEY_LEN {
            return Err(FrameError::BadKeyLength {
                index,
                len: key_len,
            });
        }
        let key = reader.take(key_len, index)?.to_vec();
        let len = reader.u32(index)? as usize;
        let bytes = reader.take(len, index)?.to_vec();
        records.push(PushRecord { key, bytes });
    }
    if records.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(records)
}

/// What a pull record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRecordKind {
    /// An update; `chain` is the chain value after it.
    Update = 0,
    /// A snapshot covering every update up to `seq`; `chain` is the chain at `seq`.
    Snapshot = 1,
}

/// One record of a pull stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRecord {
    /// Update or snapshot.
    pub kind: PullRecordKind,
    /// The seq of the update, or the last seq a snapshot covers.
    pub seq: u64,
    /// Chain value after this record.
    pub chain: Chain,
    /// Opaque bytes.
    pub bytes: Vec<u8>,
}

/// Fixed header size of a pull record (kind + seq + chain + len).
pub const PULL_HEADER_LEN: usize = 1 + 8 + 32 + 4;

/// Appends one pull record to `out`.
pub fn encode_pull_record(
    out: &mut Vec<u8>,
    kind: PullRecordKind,
    seq: u64,
    chain: &Chain,
    bytes: &[u8],
) -> Result<(), FrameError> {
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge { len: bytes.len() })?;
    out.reserve(PULL_HEADER_LEN + bytes.len());
    out.push(kind as u8);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(chain.as_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Decodes a whole pull stream (possibly empty).
pub fn decode_pull_stream(input: &[u8]) -> Result<Vec<PullRecord>, FrameError> {
    let mut reader = Reader { input, pos: 0 };
    let mut records = Vec::new();
    while !reader.done() {
        let index = records.len();
        let kind = match reader.u8(index)? {
            0 => PullRecordKind::Update,
            1 => PullRecordKind::Snapshot,
            kind => return Err(FrameError::UnknownKind { index, kind }),
        };
        let seq = u64::from_be_bytes(reader.array::<8>(index)?);
        let chain = Chain::from_bytes(reader.array::<32>(index)?);
        let len = reader.u32(index)? as usize;
        let bytes = reader.take(len, index)?.to_vec();
        records.push(PullRecord {
            kind,
            seq,
            chain,
            bytes,
        });
    }
    Ok(records)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn take(&mut self, n: usize, index: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len());
        match end {
            Some(end) => {
                let slice = &self.input[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(FrameError::Truncated {
                index,
                offset: self.input.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, index: usize) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, index)?);
        Ok(out)
    }

    fn u8(&mut self, index: usize) -> Result<u8, FrameError> {
        Ok(self.array::<1>(index)?[0])
    }

    fn u32(&mut self, index: usize) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array::<4>(index)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_layouts_in_the_protocol_doc_are_what_the_encoder_writes(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let doc = include_str!("../../docs/protocol.md");
        let block = doc
            .split("```hex\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .ok_or("docs/protocol.md has no ```hex worked example")?;
        let documented: String = block.split_whitespace().collect();
        let mut out = Vec::new();
        let chain = Chain::genesis().next(b"hi");
        encode_pull_record(&mut out, PullRecordKind::Update, 1, &chain, b"hi")?;
        let written: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(documented, written);
        assert!(doc.contains(&format!("header is {PULL_HEADER_LEN} bytes")));
        assert!(doc.contains(&format!("`{}` = update", PullRecordKind::Update as u8)));
        assert!(doc.contains(&format!("`{}` = snapshot", PullRecordKind::Snapshot as u8)));
        assert!(doc.contains(&format!("`key_len u8` (1–{MAX_KEY_LEN})")));
        assert_eq!(decode_pull_stream(&out)?[0].bytes, b"hi");
        Ok(())
    }

    fn rec(key: &str, bytes: &[u8]) -> PushRecord {
        PushRecord {
            key: key.as_bytes().to_vec(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn a_push_batch_round_trips() -> Result<(), FrameError> {
        let records = vec![rec("a", b"hello"), rec("bb", b""), rec("c", &[0, 1, 2])];
        let encoded = encode_push_batch(&records)?;
        assert_eq!(decode_push_batch(&encoded)?, records);
        Ok(())
    }

    #[test]
    fn the_push_layout_is_big_endian_as_documented() -> Result<(), FrameError> {
        let encoded = encode_push_batch(&[rec("k", &[9, 8])])?;
        assert_eq!(encoded, vec![1, b'k', 0, 0, 0, 2, 9, 8]);
        Ok(())
    }

    #[test]
    fn an_empty_batch_is_rejected() {
        assert_eq!(decode_push_batch(&[]), Err(FrameError::Empty));
    }

    #[test]
    fn every_truncation_of_a_batch_is_rejected() -> Result<(), FrameError> {
        let encoded = encode_push_batch(&[rec("key-1", b"abcdef"), rec("key-2", b"xyz")])?;
        let first_len = 1 + 5 + 4 + 6;
        for cut in 1..encoded.len() {
            if cut == first_len {
                continue; // a whole first record is a valid, shorter batch
            }
            assert!(
                matches!(
                    decode_push_batch(&encoded[..cut]),
                    Err(FrameError::Truncated { .. })
                ),
                "cut at {cut} was accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn zero_and_oversized_key_lengths_are_rejected() {
        assert!(matches!(
            decode_push_batch(&[0, 0, 0, 0, 0]),
            Err(FrameError::BadKeyLength { len: 0, .. })
        ));
        let mut long = vec![65u8];
        long.extend(std::iter::repeat_n(b'k', 65));
        long.extend([0, 0, 0, 0]);
        assert!(matches!(
            decode_push_batch(&long),
            Err(FrameError::BadKeyLength { len: 65, .. })
        ));
        assert!(encode_push_batch(&[rec("", b"x")]).is_err());
    }

    #[test]
    fn a_length_near_u32_max_is_truncation_not_allocation() {
        let input = [1, b'k', 0xff, 0xff, 0xff, 0xff, 1];
        assert!(matches!(
            decode_push_batch(&input),
            Err(FrameError::Truncated { index: 0, .. })
        ));
    }

    #[test]
    fn a_pull_stream_round_trips_and_rejects_unknown_kinds() -> Result<(), FrameError> {
        let chain = Chain::genesis().next(b"u1");
        let mut out = Vec::new();
        encode_pull_record(&mut out, PullRecordKind::Snapshot, 7, &chain, b"snap")?;
        encode_pull_record(&mut out, PullRecordKind::Update, 8, &chain, b"u")?;
        let decoded = decode_pull_stream(&out)?;
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].kind, PullRecordKind::Snapshot);
        assert_eq!(decoded[0].seq, 7);
        assert_eq!(decoded[1].bytes, b"u");
        assert_eq!(decoded[1].chain, chain);
        out[0] = 9;
        assert_eq!(
            decode_pull_stream(&out),
            Err(FrameError::UnknownKind { index: 0, kind: 9 })
        );
        assert_eq!(decode_pull_stream(&[])?, vec![]);
        Ok(())
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;
        proptest! {
            #[test]
            fn decoding_arbitrary_bytes_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = decode_push_batch(&input);
                let _ = decode_pull_stream(&input);
            }

            #[test]
            fn any_valid_batch_round_trips(
                items in proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 1..=64), proptest::collection::vec(any::<u8>(), 0..64)),
                    1..8,
                )
            ) {
                let records: Vec<PushRecord> = items
                    .into_iter()
                    .map(|(key, bytes)| PushRecord { key, bytes })
                    .collect();
                let encoded = encode_push_batch(&records).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(decode_push_batch(&encoded), Ok(records));
            }
        }
    }
}
