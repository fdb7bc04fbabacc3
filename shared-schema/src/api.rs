//! JSON bodies of the `/v1` HTTP API (design §3–5). Blobs travel as raw octet-streams, not here.

use crate::chain::Chain;
use crate::claims::Role;
use serde::{Deserialize, Serialize};

/// Response header with the workspace's head seq on pull.
pub const HEADER_HEAD_SEQ: &str = "Hearth-Head-Seq";
/// Response header set to `1` when a pull page was cut by the size limit.
pub const HEADER_MORE: &str = "Hearth-More";

/// Reply of `POST /v1/workspaces` and `POST /v1/workspaces/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWorkspace {
    /// The new workspace id.
    pub workspace_id: String,
    /// The master token; keep it secret.
    pub master_token: String,
}

/// Reply of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushReply {
    /// The seq of each record of the batch, in batch order.
    pub seqs: Vec<u64>,
    /// The workspace's head seq after the push.
    pub head_seq: u64,
    /// The chain at `head_seq`.
    pub chain: Chain,
}

/// Reply of a snapshot upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReply {
    /// The seq the stored snapshot covers.
    pub covers: u64,
    /// Size of the stored snapshot.
    pub size: u64,
}

/// Body of `POST /v1/workspaces/{id}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintTokenRequest {
    /// `write` or `read` (minting another master is `rotate`).
    pub role: Role,
    /// Lifetime in seconds; absent = no expiry.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// A label the owner recognises ("Ann's phone").
    #[serde(default)]
    pub label: String,
}

/// Body of `POST /v1/workspaces/{id}/tokens/rotate` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateRequest {
    /// A client-chosen id (1–64 characters) that makes the rotation idempotent: repeating it with
    /// the token it rotated returns the same new token, even though that token is revoked now.
    #[serde(default)]
    pub rotation_id: Option<String>,
}

/// A minted token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedToken {
    /// The token id (`sub`/`jti`).
    pub id: String,
    /// The JWT.
    pub token: String,
    /// Its role.
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// One entry of the token list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Label given when minted.
    pub label: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<u64>,
}

/// Reply of `GET /v1/workspaces/{id}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    /// All tokens of the workspace, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// Reply of `GET /v1/workspaces/{id}` (the join check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinInfo {
    /// The workspace id.
    pub workspace_id: String,
    /// The role of the token that asked.
    pub role: Role,
    /// The workspace's head seq.
    pub head_seq: u64,
    /// Expiry of the token, seconds since the Unix epoch.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// The asking token's id: wrapped keys name it (the joiner needs it to unwrap them).
    #[serde(default)]
    pub token_id: String,
    /// The notebook's epoch keys wrapped for the asking token (end-to-end encryption; empty for
    /// a plain notebook and for the owner, who holds the keys). Opaque to the server.
    #[serde(default)]
    pub keys: Vec<WrappedKey>,
}

/// One epoch key wrapped for one link (`shared_schema::seal::wrap`); opaque to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The link's token id.
    pub token_id: String,
    /// The key's epoch.
    pub epoch: u32,
    /// The wrapped key, base64 (standard, padded), [`crate::seal::WRAPPED_LEN`] bytes.
    pub wrapped: String,
}

/// Body of `PUT /v1/workspaces/{id}/keys` (master only): wrapped keys to store (an existing
/// `(token_id, epoch)` is replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutKeys {
    /// The keys; at most [`MAX_PUT_KEYS`].
    pub keys: Vec<WrappedKey>,
}

/// Most wrapped keys one `PUT …/keys` may carry.
pub const MAX_PUT_KEYS: usize = 1000;

/// An event on the live channel (see [`crate::live`] and `docs/protocol.md`):
/// - `data: {"seq":N}` — the server has stored up to N (a pull from the cursor fetches it);
/// - `data: {"seq":N,"record":"<base64>","tentative":true}` — update N as the exact pull-stream
///   record a pull will return for it, sent while the server is still making it durable: a
///   receiver may show it, and stores it only once a marker confirms it;
/// - `data: {"seq":N,"chain":"<hex>"}` — the marker: seq N is durable and the chain after it is
///   `chain`, which confirms the held tentative records up to N;
/// - `data: {"seq":N,"record":"<base64>"}` — an inline record already durable (older servers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// The seq the event is about.
    pub seq: u64,
    /// Base64 (standard, padded) of one pull-stream record at `seq`, when it is small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The record is not yet durable on the server: show it, do not store it until confirmed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tentative: bool,
    /// On a marker: the chain after `seq`, now durable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<Chain>,
}

/// Seconds a presence lasts without a heartbeat.
pub const PRESENCE_TTL_SECS: u64 = 10;
/// Seconds between a device's presence heartbeats.
pub const PRESENCE_HEARTBEAT_SECS: u64 = 3;
/// Most devices shown present in one workspace.
pub const PRESENCE_MAX: usize = 32;

/// Body of `PUT /v1/workspaces/{id}/presence`: this device (a tab) has the workspace open, in
/// `note`. Ephemeral: never stored, gone [`PRESENCE_TTL_SECS`] after the last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRequest {
    /// A random id of this tab (1–40 characters `[A-Za-z0-9-]`).
    pub device: String,
    /// The note it has open (at most 64 characters).
    #[serde(default)]
    pub note: Option<String>,
}

impl PresenceRequest {
    /// Whether the fields are within their limits.
    pub fn is_valid(&self) -> bool {
        let device_ok = (1..=40).contains(&self.device.len())
            && self
                .device
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        device_ok && self.note.as_ref().is_none_or(|n| n.len() <= 64)
    }
}

/// One device present in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its tab id.
    pub device: String,
    /// Its token's role.
    pub role: Role,
    /// The note it has open.
    pub note: Option<String>,
}

/// A live-channel event with everyone present: `data: {"presence":[…]}`, sent when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// Devices present, sorted by id.
    pub presence: Vec<Peer>,
}

/// Reply of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Server version.
    pub version: String,
}
