//! End-to-end encryption (design §9, `docs/protocol.md` § Encryption): sealing updates and
//! snapshots before they leave a device, wrapping epoch keys for share links, deriving each link's
//! secret from the owner's. I/O-free: the caller supplies randomness (fresh keys and nonces come
//! from the OS in the engine and the worker), so every function here is deterministic and tested.
//!
//! A **sealed record** is what the server stores in place of a Loro update or snapshot:
//!
//! ```text
//! 0xE6 | epoch (LEB128) | nonce (16 B) | XChaCha20-Poly1305( witness | payload ) + tag (16 B)
//! witness = last pulled seq (LEB128) | first 8 bytes of the chain value at that seq
//! AAD     = "hearth/seal/v1" | workspace id | 0x00 | the header (magic, epoch)
//! ```
//!
//! The 16 random nonce bytes are XChaCha20's 24-byte nonce with 8 zero bytes after them: 128
//! random bits keep the chance that two records under one epoch key share a nonce below 2⁻⁶⁵
//! for four billion records, and save 8 bytes on every update. Records of the first format
//! (`0xE5`, all 24 nonce bytes sent) still open.
//!
//! Loro blobs start with `loro`, never `0xE5` or `0xE6`, so sealed and plain records are told
//! apart by their first byte. The workspace id in the AAD keeps a server from moving a record between
//! workspaces; the epoch in the header says which key opens it (and a changed header fails the
//! tag). The witness is inside the ciphertext: only members see which history its author had.
//!
//! A **wrapped key** is an epoch key sealed under one link's secret, with the workspace, the
//! token id and the epoch in the AAD — opaque to the server, which stores it per token id.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

/// First byte of a sealed record (a 16-byte nonce).
pub const MAGIC: u8 = 0xE6;
/// First byte of a sealed record of the first format (a 24-byte nonce), still opened.
pub const MAGIC_V1: u8 = 0xE5;
/// Bytes of a key or secret.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (XChaCha20): of a wrapped key, a protected key ring, a first-format record.
pub const NONCE_LEN: usize = 24;
/// Random nonce bytes a sealed record carries (zero-padded to [`NONCE_LEN`]).
pub const RECORD_NONCE_LEN: usize = 16;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the chain value kept in a witness.
pub const WITNESS_CHAIN_LEN: usize = 8;
/// Bytes of a wrapped key.
pub const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// A 32-byte secret: an epoch key, the owner secret or a link secret. Shown as base64url (no
/// padding) in storage and links; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; KEY_LEN]);

impl Secret {
    /// Wraps 32 random bytes (from the OS: the caller's job).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// base64url without padding (43 characters).
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads [`Self::to_text`]'s form; input from a link, so anything else is an error.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        use base64::Engine as _;
        if text.len() != 43 {
            return Err(SealError::BadSecret);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SealError::BadSecret)?;
        <[u8; KEY_LEN]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| SealError::BadSecret)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_text(&text).map_err(serde::de::Error::custom)
    }
}

/// One epoch's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochKey {
    /// The epoch (1, 2, …; a rotation adds one).
    pub epoch: u32,
    /// Its key.
    pub key: Secret,
}

/// What a device knows of a workspace's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyRing {
    /// The owner's secret, from which every link's secret is derived (owner devices only).
    #[serde(default)]
    pub owner_secret: Option<Secret>,
    /// The secret of the link this device joined with (members only): opens its wrapped keys.
    #[serde(default)]
    pub link_secret: Option<Secret>,
    /// The epoch keys this device holds, oldest first.
    #[serde(default)]
    pub epochs: Vec<EpochKey>,
    /// A rotation under way (owner): the next epoch's key, stored before it is wrapped for the
    /// remaining links and made current once they all have it — a retry reuses it.
    #[serde(default)]
    pub next: Option<EpochKey>,
    /// For a notebook this device held before it had keys (encryption turned on later, or a
    /// member who rejoined with a keyed link): the last seq it had pulled then. Plain records up
    /// to it, and this device's own pending ones from before, still read; any later plain record
    /// is refused like a tampered one.
    #[serde(default)]
    pub plain_through: Option<u64>,
}

impl KeyRing {
    /// A new workspace's ring: the owner secret and epoch 1.
    pub fn new_owner(owner_secret: Secret, first_key: Secret) -> Self {
        Self {
            owner_secret: Some(owner_secret),
            link_secret: None,
            epochs: vec![EpochKey {
                epoch: 1,
                key: first_key,
            }],
            next: None,
            plain_through: None,
        }
    }

    /// True when a plain (unsealed) record may be read: one pulled at `seq` up to
    /// [`Self::plain_through`], or this device's own from before it had keys (`seq` None).
    pub fn reads_plain(&self, seq: Option<u64>) -> bool {
        self.plain_through
            .is_some_and(|through| seq.is_none_or(|s| s <= through))
    }

    /// The newest epoch key: what new records are sealed under.
    pub fn current(&self) -> Option<&EpochKey> {
        self.epochs.iter().max_by_key(|k| k.epoch)
    }

    /// The key of `epoch`.
    pub fn key(&self, epoch: u32) -> Option<&Secret> {
        self.epochs
            .iter()
            .find(|k| k.epoch == epoch)
            .map(|k| &k.key)
    }

    /// Adds keys not held yet; true when one was added.
    pub fn add(&mut self, keys: impl IntoIterator<Item = EpochKey>) -> bool {
        let mut added = false;
        for k in keys {
            if self.key(k.epoch).is_none() {
                self.epochs.push(k);
                added = true;
            }
        }
        self.epochs.sort_by_key(|k| k.epoch);
        added
    }
}

/// The history a record's author had pulled when it sealed the record: the last seq and the
/// first bytes of the chain value there. Receivers compare it with their own chain history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    /// The author's last pulled seq (0: nothing pulled).
    pub seq: u64,
    /// The first [`WITNESS_CHAIN_LEN`] bytes of the chain value at `seq`.
    pub chain: [u8; WITNESS_CHAIN_LEN],
}

impl Witness {
    /// The witness of a device whose last pulled seq is `seq` with chain value `chain`.
    pub fn new(seq: u64, chain: &crate::Chain) -> Self {
        let mut prefix = [0; WITNESS_CHAIN_LEN];
        prefix.copy_from_slice(&chain.as_bytes()[..WITNESS_CHAIN_LEN]);
        Self { seq, chain: prefix }
    }

    /// True when `chain` (this device's value at `self.seq`) agrees.
    pub fn agrees_with(&self, chain: &crate::Chain) -> bool {
        chain.as_bytes()[..WITNESS_CHAIN_LEN] == self.chain
    }
}

/// An opened record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The epoch it was sealed under.
    pub epoch: u32,
    /// Its author's witness.
    pub witness: Witness,
    /// The Loro bytes.
    pub payload: Vec<u8>,
}

/// Sealing or opening failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SealError {
    /// Not a sealed record (too short, or another first byte).
    #[error(
        "this record is not sealed: the notebook is encrypted, so the server cannot have sent it"
    )]
    NotSealed,
    /// The record names an epoch this device has no key for.
    #[error("this record is under key epoch {epoch}, which this device does not hold")]
    UnknownEpoch {
        /// The record's epoch.
        epoch: u32,
    },
    /// The tag did not verify: wrong key, another workspace, or changed bytes.
    #[error(
        "this record does not open with this notebook's key: it was changed, or belongs elsewhere"
    )]
    Tampered,
    /// A backup's keys did not open with the passphrase given.
    #[error("the passphrase does not open this backup's keys; check it and try again")]
    WrongPassphrase,
    /// A secret in a link or in storage is not 43 base64url characters.
    #[error("the notebook key in this link is damaged; ask for the link again")]
    BadSecret,
}

type HmacSha256 = Hmac<Sha256>;

fn leb128_put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb128_get(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn seal_aad(ws: &str, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + ws.len() + header.len());
    aad.extend_from_slice(b"hearth/seal/v1");
    aad.extend_from_slice(ws.as_bytes());
    aad.push(0);
    aad.extend_from_slice(header);
    aad
}

/// True when `bytes` is a sealed record (by its first byte).
pub fn is_sealed(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(&MAGIC) | Some(&MAGIC_V1))
}

/// The epoch a sealed record names, read without a key (the worker uses it to fetch keys it
/// lacks before storing a page). None for anything not sealed.
pub fn epoch_of(bytes: &[u8]) -> Option<u32> {
    if !is_sealed(bytes) {
        return None;
    }
    let (epoch, _) = leb128_get(&bytes[1..])?;
    u32::try_from(epoch).ok()
}

/// Seals `payload` of workspace `ws` under `key` with the author's `witness`; `nonce` must be
/// fresh random bytes.
pub fn seal(
    ws: &str,
    key: &EpochKey,
    witness: Witness,
    nonce: [u8; RECORD_NONCE_LEN],
    payload: &[u8],
) -> Vec<u8> {
    let mut header = vec![MAGIC];
    leb128_put(&mut header, u64::from(key.epoch));
    let mut plain = Vec::with_capacity(payload.len() + 20);
    leb128_put(&mut plain, witness.seq);
    plain.extend_from_slice(&witness.chain);
    plain.extend_from_slice(payload);
    let cipher = XChaCha20Poly1305::new(key.key.as_bytes().into());
    let aad = seal_aad(ws, &header);
    let sealed = cipher
        .encrypt(
            &record_nonce(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        // Encryption fails only for inputs larger than 256 GiB.
        .unwrap_or_default();
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// XChaCha20's nonce from a record's nonce bytes (16, zero-padded; or all 24 of the first format).
fn record_nonce(bytes: &[u8]) -> XNonce {
    let mut nonce = XNonce::default();
    nonce[..bytes.len()].copy_from_slice(bytes);
    nonce
}

/// Opens a sealed record of workspace `ws` with the keys in `ring`.
pub fn open(ws: &str, ring: &KeyRing, bytes: &[u8]) -> Result<Opened, SealError> {
    if !is_sealed(bytes) {
        return Err(SealError::NotSealed);
    }
    let (epoch, used) = leb128_get(&bytes[1..]).ok_or(SealError::NotSealed)?;
    let epoch = u32::try_from(epoch).map_err(|_| SealError::Tampered)?;
    let header_len = 1 + used;
    let nonce_len = if bytes[0] == MAGIC_V1 {
        NONCE_LEN
    } else {
        RECORD_NONCE_LEN
    };
    if bytes.len() < header_len + nonce_len + TAG_LEN {
        return Err(SealError::Tampered);
    }
    let key = ring.key(epoch).ok_or(SealError::UnknownEpoch { epoch })?;
    let (header, rest) = bytes.split_at(header_len);
    let (nonce, sealed) = rest.split_at(nonce_len);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let aad = seal_aad(ws, header);
    let plain = cipher
        .decrypt(
            &record_nonce(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Tampered)?;
    let (seq, used) = leb128_get(&plain).ok_or(SealError::Tampered)?;
    let chain_end = used + WITNESS_CHAIN_LEN;
    let chain: [u8; WITNESS_CHAIN_LEN] = plain
        .get(used..chain_end)
        .and_then(|c| c.try_into().ok())
        .ok_or(SealError::Tampered)?;
    Ok(Opened {
        epoch,
        witness: Witness { seq, chain },
        payload: plain[chain_end..].to_vec(),
    })
}

/// The secret of the link whose token id is `token_id`, derived from the owner's secret — so the
/// owner can re-derive every live link's secret when a rotation re-wraps the new key.
pub fn link_secret(owner_secret: &Secret, ws: &str, token_id: &str) -> Secret {
    // HMAC accepts any key length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(owner_secret.as_bytes()) else {
        return Secret([0; KEY_LEN]);
    };
    mac.update(b"hearth/link/v1");
    mac.update(ws.as_bytes());
    mac.update(&[0]);
    mac.update(token_id.as_bytes());
    Secret(mac.finalize().into_bytes().into())
}

fn wrap_aad(ws: &str, token_id: &str, epoch: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + ws.len() + token_id.len());
    aad.extend_from_slice(b"hearth/wrap/v1");
    aad.extend_from_slice(ws.as_bytes());
    aad.push(0);
    aad.extend_from_slice(token_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&epoch.to_le_bytes());
    aad
}

/// Wraps an epoch key for the link `token_id` under that link's secret.
pub fn wrap(
    link_secret: &Secret,
    ws: &str,
    token_id: &str,
    key: &EpochKey,
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(link_secret.as_bytes().into());
    let aad = wrap_aad(ws, token_id, key.epoch);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.key.as_bytes(),
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

/// Unwraps an epoch key the server returned for this device's link.
pub fn unwrap(
    link_secret: &Secret,
    ws: &str,
    token_id: &str,
    epoch: u32,
    wrapped: &[u8],
) -> Result<EpochKey, SealError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(SealError::Tampered);
    }
    let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(link_secret.as_bytes().into());
    let aad = wrap_aad(ws, token_id, epoch);
    let key = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Tampered)?;
    let key = <[u8; KEY_LEN]>::try_from(key.as_slice()).map_err(|_| SealError::Tampered)?;
    Ok(EpochKey {
        epoch,
        key: Secret(key),
    })
}

/// First bytes of keys protected by a passphrase ([`protect`]).
const PROTECTED_MAGIC: &[u8; 4] = b"HKP1";
/// Bytes of the Argon2id salt.
pub const SALT_LEN: usize = 16;

/// Argon2id with OWASP's first set of parameters (19 MiB, two passes, one lane).
fn passphrase_key(passphrase: &str, salt: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(KEY_LEN))
        .map_err(|_| SealError::WrongPassphrase)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; KEY_LEN];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|_| SealError::WrongPassphrase)?;
    Ok(key)
}

/// A key ring sealed under a key derived from `passphrase` (Argon2id): `"HKP1" | salt (16 B) |
/// nonce (24 B) | XChaCha20-Poly1305(ring as JSON) | tag`. For backups that carry their keys.
pub fn protect(
    ring: &KeyRing,
    passphrase: &str,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, SealError> {
    let key = passphrase_key(passphrase, &salt)?;
    let plain = serde_json::to_vec(ring).map_err(|_| SealError::WrongPassphrase)?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: PROTECTED_MAGIC,
            },
        )
        .unwrap_or_default();
    let mut out = PROTECTED_MAGIC.to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens [`protect`]'s bytes; a wrong passphrase (or changed bytes) is [`SealError::WrongPassphrase`].
pub fn unprotect(bytes: &[u8], passphrase: &str) -> Result<KeyRing, SealError> {
    let head = PROTECTED_MAGIC.len();
    if bytes.len() < head + SALT_LEN + NONCE_LEN + TAG_LEN || &bytes[..head] != PROTECTED_MAGIC {
        return Err(SealError::WrongPassphrase);
    }
    let salt = &bytes[head..head + SALT_LEN];
    let nonce = &bytes[head + SALT_LEN..head + SALT_LEN + NONCE_LEN];
    let key = passphrase_key(passphrase, salt)?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: &bytes[head + SALT_LEN + NONCE_LEN..],
                aad: PROTECTED_MAGIC,
            },
        )
        .map_err(|_| SealError::WrongPassphrase)?;
    serde_json::from_slice(&plain).map_err(|_| SealError::WrongPassphrase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Chain;

    fn key(epoch: u32, b: u8) -> EpochKey {
        EpochKey {
            epoch,
            key: Secret([b; KEY_LEN]),
        }
    }

    fn ring(keys: &[EpochKey]) -> KeyRing {
        KeyRing {
            epochs: keys.to_vec(),
            ..KeyRing::default()
        }
    }

    #[test]
    fn a_sealed_record_opens_to_its_payload_and_witness_and_hides_it() -> Result<(), SealError> {
        let chain = Chain::genesis().next(b"x");
        let witness = Witness::new(300, &chain);
        let payload = b"loro\0marker-7f3a a one character edit".to_vec();
        let sealed = seal("ws-1", &key(1, 7), witness, [9; RECORD_NONCE_LEN], &payload);
        assert!(is_sealed(&sealed));
        assert_eq!(epoch_of(&sealed), Some(1));
        assert!(!sealed.windows(6).any(|w| w == b"marker"));
        let opened = open("ws-1", &ring(&[key(1, 7)]), &sealed)?;
        assert_eq!(opened.payload, payload);
        assert_eq!(opened.epoch, 1);
        assert!(opened.witness.agrees_with(&chain));
        assert!(!opened.witness.agrees_with(&Chain::genesis()));
        assert_eq!(opened.witness.seq, 300);
        Ok(())
    }

    #[test]
    fn sealing_adds_forty_five_bytes_to_an_update_at_a_three_byte_seq() {
        let witness = Witness::new(100_000, &Chain::genesis());
        let sealed = seal("ws", &key(1, 1), witness, [0; RECORD_NONCE_LEN], &[0; 40]);
        // 1 magic + 1 epoch + 16 nonce + 16 tag + 3 seq + 8 chain.
        assert_eq!(sealed.len() - 40, 45);
    }

    #[test]
    fn a_record_of_the_first_format_still_opens() -> Result<(), SealError> {
        // Built as the first format did: 0xE5, the epoch, all 24 nonce bytes, the same AAD.
        let k = key(3, 9);
        let header = vec![MAGIC_V1, 3];
        let mut plain = vec![7];
        plain.extend_from_slice(&Witness::new(7, &Chain::genesis()).chain);
        plain.extend_from_slice(b"loro old");
        let nonce = [5u8; NONCE_LEN];
        let cipher = XChaCha20Poly1305::new(k.key.as_bytes().into());
        let body = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &seal_aad("ws", &header),
                },
            )
            .map_err(|_| SealError::Tampered)?;
        let mut record = header;
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&body);
        assert!(is_sealed(&record));
        assert_eq!(epoch_of(&record), Some(3));
        let opened = open("ws", &ring(&[k]), &record)?;
        assert_eq!(opened.payload, b"loro old");
        assert_eq!(opened.witness.seq, 7);
        Ok(())
    }

    #[test]
    fn a_flipped_byte_a_wrong_key_another_workspace_and_an_unknown_epoch_are_refused() {
        let sealed = seal(
            "ws-1",
            &key(2, 7),
            Witness::new(0, &Chain::genesis()),
            [1; RECORD_NONCE_LEN],
            b"loro-bytes",
        );
        let good = ring(&[key(2, 7)]);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open("ws-1", &good, &bad).is_err(), "flipped byte {i}");
        }
        assert_eq!(
            open("ws-1", &ring(&[key(2, 8)]), &sealed),
            Err(SealError::Tampered)
        );
        assert_eq!(open("ws-2", &good, &sealed), Err(SealError::Tampered));
        assert_eq!(
            open("ws-1", &ring(&[key(1, 7)]), &sealed),
            Err(SealError::UnknownEpoch { epoch: 2 })
        );
        assert_eq!(
            open("ws-1", &good, b"loro plain"),
            Err(SealError::NotSealed)
        );
        assert_eq!(open("ws-1", &good, &[MAGIC]), Err(SealError::NotSealed));
        assert_eq!(open("ws-1", &good, &sealed[..20]), Err(SealError::Tampered));
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_link_workspace_and_epoch() -> Result<(), SealError> {
        let owner = Secret([3; KEY_LEN]);
        let secret = link_secret(&owner, "ws", "tok-1");
        assert_ne!(secret, link_secret(&owner, "ws", "tok-2"));
        assert_ne!(secret, link_secret(&owner, "ws2", "tok-1"));
        let k = key(4, 9);
        let wrapped = wrap(&secret, "ws", "tok-1", &k, [5; NONCE_LEN]);
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(unwrap(&secret, "ws", "tok-1", 4, &wrapped)?, k);
        assert!(unwrap(&secret, "ws", "tok-2", 4, &wrapped).is_err());
        assert!(unwrap(&secret, "ws", "tok-1", 5, &wrapped).is_err());
        let other = link_secret(&owner, "ws", "tok-2");
        assert!(unwrap(&other, "ws", "tok-1", 4, &wrapped).is_err());
        assert!(unwrap(&secret, "ws", "tok-1", 4, &wrapped[1..]).is_err());
        Ok(())
    }

    #[test]
    fn secrets_round_trip_as_text_and_damaged_text_is_refused() -> Result<(), SealError> {
        let s = Secret([200; KEY_LEN]);
        assert_eq!(Secret::from_text(&s.to_text())?, s);
        assert_eq!(format!("{s:?}"), "Secret(…)");
        for bad in ["", "abc", &"!".repeat(43), &s.to_text()[1..]] {
            assert_eq!(Secret::from_text(bad), Err(SealError::BadSecret));
        }
        let ring = KeyRing::new_owner(s.clone(), Secret([1; KEY_LEN]));
        let json = serde_json::to_string(&ring).map_err(|_| SealError::BadSecret)?;
        let back: KeyRing = serde_json::from_str(&json).map_err(|_| SealError::BadSecret)?;
        assert_eq!(back, ring);
        Ok(())
    }

    #[test]
    fn keys_protected_by_a_passphrase_open_only_with_it() -> Result<(), SealError> {
        let ring = ring(&[key(1, 1), key(2, 2)]);
        let blob = protect(&ring, "correct horse", [3; SALT_LEN], [4; NONCE_LEN])?;
        assert_eq!(unprotect(&blob, "correct horse")?, ring);
        assert_eq!(
            unprotect(&blob, "wrong horse"),
            Err(SealError::WrongPassphrase)
        );
        let mut changed = blob.clone();
        changed[30] ^= 1;
        assert_eq!(
            unprotect(&changed, "correct horse"),
            Err(SealError::WrongPassphrase)
        );
        assert_eq!(unprotect(b"HKP1", "x"), Err(SealError::WrongPassphrase));
        Ok(())
    }

    #[test]
    fn a_ring_adds_only_new_epochs_and_seals_under_the_newest() {
        let mut r = ring(&[key(1, 1)]);
        assert!(r.add([key(3, 3), key(1, 9)]));
        assert!(!r.add([key(3, 4)]));
        assert_eq!(r.current().map(|k| k.epoch), Some(3));
        assert_eq!(r.key(1), Some(&Secret([1; KEY_LEN])));
    }
}
