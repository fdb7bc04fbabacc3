//! The integrity chain (design §3): `chain_n = SHA-256(chain_{n-1} || SHA-256(update_n))`, with
//! `chain_0` = 32 zero bytes. The server computes it in the transaction that stores an update; the
//! worker recomputes it over what it pulled and reports any mismatch as corruption or tampering.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// A chain value: 32 bytes, shown and sent as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Chain([u8; 32]);

/// A chain value could not be parsed, or did not match.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ChainError {
    /// Not 64 hex digits.
    #[error("a chain value is 64 hex digits; got {got:?}")]
    BadHex {
        /// What was given.
        got: String,
    },
    /// The chain recomputed over pulled updates differs from the server's.
    #[error("integrity chain mismatch at seq {seq}: expected {expected}, server sent {actual}; stop syncing and keep local data")]
    Mismatch {
        /// The seq where the chains diverged.
        seq: u64,
        /// What the client computed.
        expected: Chain,
        /// What the server sent.
        actual: Chain,
    },
}

impl Chain {
    /// The chain before any update: 32 zero bytes.
    pub fn genesis() -> Self {
        Self([0; 32])
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a chain from a slice that must hold exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The chain after appending `update`.
    pub fn next(&self, update: &[u8]) -> Self {
        let update_hash = Sha256::digest(update);
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(update_hash);
        Self(hasher.finalize().into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, ChainError> {
        let bad = || ChainError::BadHex { got: s.to_owned() };
        let bytes = hex::decode(s).map_err(|_| bad())?;
        Self::from_slice(&bytes).ok_or_else(bad)
    }

    /// Extends the chain by `update` and checks the result against what the server sent.
    pub fn verify_next(&self, seq: u64, update: &[u8], sent: &Chain) -> Result<Chain, ChainError> {
        let expected = self.next(update);
        if &expected == sent {
            Ok(expected)
        } else {
            Err(ChainError::Mismatch {
                seq,
                expected,
                actual: *sent,
            })
        }
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain({})", self.to_hex())
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Chain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Chain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Chain::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_matches_the_documented_formula() {
        let update = b"some loro update";
        let mut inner = Sha256::new();
        inner.update([0u8; 32]);
        inner.update(Sha256::digest(update));
        let expected: [u8; 32] = inner.finalize().into();
        assert_eq!(Chain::genesis().next(update).as_bytes(), &expected);
    }

    #[test]
    fn order_matters_and_a_flipped_byte_is_detected() {
        let a = Chain::genesis().next(b"a").next(b"b");
        let b = Chain::genesis().next(b"b").next(b"a");
        assert_ne!(a, b);
        let step = Chain::genesis().next(b"a");
        assert!(Chain::genesis().verify_next(1, b"a", &step).is_ok());
        assert!(matches!(
            Chain::genesis().verify_next(1, b"A", &step),
            Err(ChainError::Mismatch { seq: 1, .. })
        ));
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() -> Result<(), ChainError> {
        let c = Chain::genesis().next(b"x");
        assert_eq!(Chain::from_hex(&c.to_hex())?, c);
        assert!(Chain::from_hex("zz").is_err());
        assert!(Chain::from_hex("00").is_err());
        Ok(())
    }
}
