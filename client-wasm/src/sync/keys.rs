//! Keys between devices (end-to-end encryption; `shared_schema::seal` holds the formats,
//! [`crate::keys`] how this device seals and opens):
//!
//! - [`share`] — the owner makes a link: mints its token, derives the link's secret from the
//!   owner secret and the token id, wraps every epoch key under it and stores the wrapped keys on
//!   the server; only then is the link (with the secret in its fragment, `&k=`) given out.
//! - [`learn`] — a joining device unwraps the keys the join call returned with its link's secret.
//! - [`refresh`] — a device that pulls a record under an epoch it lacks asks for its wrapped
//!   keys again (after the owner rotated) before storing the page.
//! - [`revoke`] — revoking a link is a deny on the server *and* a key rotation ([`rotate_key`]):
//!   what is written afterwards is sealed under a key the revoked link never gets.
//! - [`encrypt`] — the owner turns encryption on for a notebook made before it existed
//!   (one-way): every link is revoked (its members hold no key; the owner sends new links), the
//!   log is caught up, and the notebook gets its first key; the page then uploads a snapshot
//!   sealed under it.

use super::{remote_from, Remote, SyncCore, SyncError, Transport};
use crate::storage::{Change, Store, Updated, WorkspaceRecord};
use base64::Engine as _;
use shared_schema::api::MAX_PUT_KEYS;
use shared_schema::api::{JoinInfo, MintTokenRequest, MintedToken, PutKeys, WrappedKey};
use shared_schema::seal::EpochKey;
use shared_schema::seal::{self, KeyRing, Secret};
use shared_schema::sync::StopReason;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A link made by [`share`].
#[derive(Debug, Clone)]
pub struct Shared {
    /// The minted token.
    pub minted: MintedToken,
    /// The link's secret, for the link's fragment; `None` for a plain notebook.
    pub key: Option<Secret>,
}

/// Every epoch key of `ring` wrapped for the link `token_id` under `secret`.
pub fn wrap_all(
    ring: &KeyRing,
    secret: &Secret,
    ws: &str,
    token_id: &str,
) -> Result<Vec<WrappedKey>, crate::keys::NoRandom> {
    ring.epochs
        .iter()
        .map(|k| {
            let wrapped = seal::wrap(secret, ws, token_id, k, crate::keys::fresh_nonce()?);
            Ok(WrappedKey {
                token_id: token_id.to_owned(),
                epoch: k.epoch,
                wrapped: b64().encode(wrapped),
            })
        })
        .collect()
}

/// Makes a share link's token (owner only) and, for an encrypted notebook, stores its wrapped
/// keys on the server before returning: a link is never given out that cannot open the notebook.
pub async fn share<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    ws: &str,
    request: &MintTokenRequest,
) -> Result<Shared, SyncError> {
    let (record, remote) = remote_from(ws, store.get_workspace(ws).await?)?;
    let minted = transport.mint(&remote, request).await?;
    let Some((ring, owner)) = record
        .keys
        .as_ref()
        .and_then(|r| r.owner_secret.as_ref().map(|o| (r, o)))
    else {
        return Ok(Shared { minted, key: None });
    };
    let secret = seal::link_secret(owner, ws, &minted.id);
    let keys =
        wrap_all(ring, &secret, ws, &minted.id).map_err(|e| SyncError::BadLink(e.to_string()))?;
    transport.put_keys(&remote, &PutKeys { keys }).await?;
    Ok(Shared {
        minted,
        key: Some(secret),
    })
}

/// The keys a join call returned, opened with the link's secret: `None` for a plain notebook
/// (no secret, no keys). A link without its secret to an encrypted notebook, a secret with no
/// keys for it, or keys that do not open are refused before anything is stored.
pub fn learn(
    ws: &str,
    info: &JoinInfo,
    secret: Option<Secret>,
) -> Result<Option<KeyRing>, SyncError> {
    let secret = match (secret, info.keys.is_empty()) {
        (None, true) => return Ok(None),
        (None, false) => {
            return Err(SyncError::BadLink(
                "it lacks the notebook's key (the part after “&k=”): ask for the whole link".into(),
            ))
        }
        (Some(_), true) => {
            return Err(SyncError::BadLink(
                "the owner has not stored the keys for it; ask for a new link".into(),
            ))
        }
        (Some(s), false) => s,
    };
    let mut ring = KeyRing {
        link_secret: Some(secret.clone()),
        ..KeyRing::default()
    };
    for k in &info.keys {
        let opened = b64()
            .decode(&k.wrapped)
            .ok()
            .and_then(|w| seal::unwrap(&secret, ws, &info.token_id, k.epoch, &w).ok())
            .ok_or_else(|| {
                SyncError::BadLink(
                    "its notebook key does not open the notebook: ask for the link again".into(),
                )
            })?;
        ring.add([opened]);
    }
    Ok(Some(ring))
}

/// True when a record of `page` is sealed under an epoch `record`'s ring lacks, and the ring can
/// learn keys (a member's, with its link secret).
pub fn lacks_epoch<'a>(
    record: &WorkspaceRecord,
    mut bytes: impl Iterator<Item = &'a [u8]>,
) -> bool {
    let Some(ring) = record.keys.as_ref().filter(|r| r.link_secret.is_some()) else {
        return false;
    };
    bytes.any(|b| seal::epoch_of(b).is_some_and(|e| ring.key(e).is_none()))
}

/// Asks the server for this device's wrapped keys again and stores those it did not hold. A
/// failure is not an error of the round: records that still do not open are quarantined.
pub async fn refresh<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    remote: &Remote,
    record: &WorkspaceRecord,
) -> Result<(), SyncError> {
    let Some(secret) = record.keys.as_ref().and_then(|r| r.link_secret.clone()) else {
        return Ok(());
    };
    let info = transport.join(remote).await?;
    if let Ok(Some(ring)) = learn(&remote.ws, &info, Some(secret)) {
        store
            .update_workspace(&remote.ws, &Change::Keys(ring))
            .await?;
    }
    Ok(())
}

/// Revokes the link `token_id` (owner): the server refuses it at once, then the notebook's key is
/// rotated ([`rotate_key`]). Returns the new epoch (`None` for a plain notebook).
pub async fn revoke<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    ws: &str,
    token_id: &str,
) -> Result<Option<u32>, SyncError> {
    let (_, remote) = remote_from(ws, store.get_workspace(ws).await?)?;
    transport.revoke(&remote, token_id).await?;
    rotate_key(store, transport, ws).await
}

/// Rotates the notebook's key (owner): a new epoch key is stored here first (a retry, or another
/// tab, reuses it), wrapped for every link that is not revoked and stored on the server, and only
/// then made current — so no record is ever sealed under a key a remaining member cannot get.
/// Returns the new epoch (`None` for a plain notebook or a member's device).
pub async fn rotate_key<S: Store, T: Transport>(
    store: &S,
    transport: &T,
    ws: &str,
) -> Result<Option<u32>, SyncError> {
    let (record, remote) = remote_from(ws, store.get_workspace(ws).await?)?;
    let Some(ring) = record.keys.filter(|r| r.owner_secret.is_some()) else {
        return Ok(None);
    };
    let next = match ring.next.clone() {
        Some(next) => next,
        None => {
            let fresh = EpochKey {
                epoch: ring.current().map_or(1, |k| k.epoch + 1),
                key: crate::keys::fresh_secret()?,
            };
            let begin = KeyRing {
                next: Some(fresh),
                ..KeyRing::default()
            };
            match store.update_workspace(ws, &Change::Keys(begin)).await? {
                Updated::Changed(r) | Updated::Unchanged(r) => {
                    r.keys.and_then(|k| k.next).ok_or_else(|| {
                        SyncError::stop(StopReason::Forgotten, "the key rotation was lost")
                    })?
                }
                Updated::Missing => {
                    return Err(SyncError::stop(
                        StopReason::Forgotten,
                        "this notebook was removed from this browser",
                    ))
                }
            }
        }
    };
    let Some(owner) = ring.owner_secret.as_ref() else {
        return Ok(None);
    };
    let tokens = transport.list_tokens(&remote).await?.tokens;
    let mut keys = Vec::new();
    for t in tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && !t.role.is_master())
    {
        let secret = seal::link_secret(owner, ws, &t.id);
        let wrapped = seal::wrap(&secret, ws, &t.id, &next, crate::keys::fresh_nonce()?);
        keys.push(WrappedKey {
            token_id: t.id.clone(),
            epoch: next.epoch,
            wrapped: b64().encode(wrapped),
        });
    }
    for chunk in keys.chunks(MAX_PUT_KEYS) {
        let body = PutKeys {
            keys: chunk.to_vec(),
        };
        transport.put_keys(&remote, &body).await?;
    }
    let done = KeyRing {
        epochs: vec![next.clone()],
        ..KeyRing::default()
    };
    store.update_workspace(ws, &Change::Keys(done)).await?;
    Ok(Some(next.epoch))
}

/// What [`encrypt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted {
    /// Links revoked (their members need new links).
    pub revoked: usize,
    /// False when the notebook already had keys (nothing was done).
    pub turned_on: bool,
}

/// Turns end-to-end encryption on for a plain notebook (owner, one-way). Every link that is not
/// revoked is revoked first — its members hold no key and could only keep writing in the clear —
/// then this device's pending updates are pushed and the log pulled to its head (nobody but the
/// owner can append any more), and only then
/// does the notebook get an owner ring with epoch 1 ([`Change::Keys`] records the cursor as the
/// ring's `plain_through`: what was pulled and typed before still reads; a plain record after it
/// never will). From then on every update is sealed; the page compacts, and the snapshot it
/// uploads is sealed under epoch 1. A retry after a failure repeats what is left.
pub async fn encrypt<S: Store, T: Transport>(
    core: &SyncCore<S, T>,
    ws: &str,
) -> Result<Encrypted, SyncError> {
    let (record, remote) = remote_from(ws, core.store.get_workspace(ws).await?)?;
    if record.keys.is_some() {
        return Ok(Encrypted {
            revoked: 0,
            turned_on: false,
        });
    }
    if !record.role.is_master() {
        return Err(SyncError::stop(
            StopReason::InvalidToken,
            "only the notebook's owner can turn encryption on",
        ));
    }
    let tokens = core.transport.list_tokens(&remote).await?.tokens;
    let mut revoked = 0;
    for t in tokens
        .iter()
        .filter(|t| t.revoked_at.is_none() && !t.role.is_master())
    {
        core.transport.revoke(&remote, &t.id).await?;
        revoked += 1;
    }
    // This device's unsent updates go out in the clear one last time (they are part of the plain
    // past), and the cursor reaches the head: nothing plain is left to arrive after it.
    core.sync_once(ws, &|_, _| {}).await?;
    let ring = crate::keys::new_owner_ring()?;
    match core.store.update_workspace(ws, &Change::Keys(ring)).await? {
        Updated::Changed(_) | Updated::Unchanged(_) => Ok(Encrypted {
            revoked,
            turned_on: true,
        }),
        Updated::Missing => Err(SyncError::stop(
            StopReason::Forgotten,
            "this notebook was removed from this browser",
        )),
    }
}
