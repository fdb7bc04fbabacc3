//! Messages between the page and the sync worker (bincode over `postMessage`, by gloo-worker),
//! and the JSON messages every tab and worker exchange on the `hearth-sync` BroadcastChannel.

use serde::{Deserialize, Serialize};
use shared_schema::api::TokenInfo;
use shared_schema::sync::SyncStatus;
use shared_schema::Role;

/// Name of the BroadcastChannel shared by tabs and workers of one origin.
pub const CHANNEL: &str = "hearth-sync";

/// Largest update a broadcast carries (the live channel's inline limit); a larger one is only
/// announced, and tabs read it from storage.
pub const CARRY_MAX: usize = shared_schema::live::INLINE_MAX;

/// A tab reads storage for records it already holds — its own edits coming back, live records
/// it showed while the worker held them — once every this many seqs: its cursors follow, and
/// the records piled up are folded into its snapshot when due. (Each read costs a tab ~2–3 ms
/// of its main thread; for every remote edit that was on the path of the next one.)
pub const READ_EVERY: u64 = 32;

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerRequest {
    /// Liveness check; answered with [`WorkerResponse::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u32,
    },
    /// Open the database and sync every workspace that has a server and a token.
    Start {
        /// IndexedDB database name.
        db_name: String,
    },
    /// Start syncing one workspace (after it was joined or connected).
    Watch {
        /// Workspace id.
        ws: String,
    },
    /// Register a local workspace on the server (same id) and start syncing it.
    Connect {
        /// Workspace id.
        ws: String,
        /// Server base URL, e.g. `http://127.0.0.1:8080`.
        server_url: String,
    },
    /// Join a workspace from a share link: the token is checked with the server, then stored —
    /// never over a stronger or equal token — and the workspace syncs.
    Join {
        /// Workspace id (from the link; validated).
        ws: String,
        /// Server base URL.
        server_url: String,
        /// The link's token.
        token: String,
        /// The link's key (`&k=`), for an encrypted notebook.
        key: Option<String>,
        /// Keys this device held before the browser deleted its storage (recovery): added to
        /// the record once the join is stored.
        ring: Option<shared_schema::seal::KeyRing>,
    },
    /// Mint a share token (master only).
    Mint {
        /// Workspace id.
        ws: String,
        /// `read` or `write`.
        role: Role,
        /// Lifetime in seconds.
        expires_in: Option<u64>,
        /// Label.
        label: String,
    },
    /// Revoke a token (master only).
    Revoke {
        /// Workspace id.
        ws: String,
        /// Token id.
        token_id: String,
    },
    /// This tab has `ws` open, in `note`: the worker sends presence heartbeats for it (every
    /// few seconds, and at once on a change) until told otherwise.
    Presence {
        /// Workspace id.
        ws: String,
        /// This tab's random id.
        device: String,
        /// The note it has open.
        note: Option<String>,
    },
    /// List the workspace's tokens (master only).
    ListTokens {
        /// Workspace id.
        ws: String,
    },
    /// Rotate the master token (master only); the new one replaces it in IndexedDB, and an
    /// encrypted notebook's key is rotated with it.
    Rotate {
        /// Workspace id.
        ws: String,
    },
    /// Turn end-to-end encryption on for a plain notebook (master only, one-way; revokes every
    /// link).
    Encrypt {
        /// Workspace id.
        ws: String,
    },
    /// Download the server's backup file (master only).
    Backup {
        /// Workspace id.
        ws: String,
    },
    /// Delete the workspace on the server (master only).
    DeleteRemote {
        /// Workspace id.
        ws: String,
    },
    /// The page saw the network go on- or offline.
    Online(bool),
    /// A broadcast from this worker's own page (an [`Envelope`]'s JSON), handed over directly.
    Tell(String),
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerResponse {
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u32,
        /// The worker's build version.
        version: String,
    },
    /// A workspace is now on the server.
    Connected {
        /// Workspace id.
        ws: String,
    },
    /// A share link was accepted; the workspace is stored and syncing.
    Joined {
        /// Workspace id.
        ws: String,
        /// The role this device has now.
        role: Role,
    },
    /// A share link could not be used; nothing was stored.
    JoinFailed {
        /// Workspace id from the link.
        ws: String,
        /// One sentence for the person.
        message: String,
    },
    /// A minted share token.
    Minted {
        /// Workspace id.
        ws: String,
        /// Token id.
        id: String,
        /// The JWT.
        token: String,
        /// The link's key (`&k=`), for an encrypted notebook.
        key: Option<String>,
    },
    /// The workspace's tokens.
    Tokens {
        /// Workspace id.
        ws: String,
        /// Tokens, oldest first.
        tokens: Vec<TokenInfo>,
    },
    /// A token was revoked.
    Revoked {
        /// Token id.
        token_id: String,
    },
    /// The master token was rotated.
    Rotated {
        /// Workspace id.
        ws: String,
    },
    /// Encryption is on (`revoked` links were revoked; `turned_on` false: it already was).
    Encrypted {
        /// Workspace id.
        ws: String,
        /// Links revoked.
        revoked: usize,
        /// False when the notebook already had keys.
        turned_on: bool,
    },
    /// A server backup file.
    BackupFile {
        /// Workspace id.
        ws: String,
        /// The file.
        bytes: Vec<u8>,
    },
    /// The workspace was deleted on the server.
    DeletedRemote {
        /// Workspace id.
        ws: String,
    },
    /// A broadcast from this worker (an [`Envelope`]'s JSON), handed to its own page directly.
    Heard(String),
    /// A request failed.
    Failed {
        /// What was asked.
        what: String,
        /// Why, for the user.
        message: String,
    },
}

/// A [`Broadcast`] as it travels: `{"id":N,"msg":{"<kind>":{…}}}` — JSON with the message
/// externally tagged (no `flatten`, no internal tag: serde decodes those through a buffered
/// `Content` tree, which cost the first load ~15 KB and each message a second pass).
/// Every broadcast goes out twice — on the BroadcastChannel to every other tab and worker, and
/// straight to the sender's own worker or page ([`WorkerRequest::Tell`],
/// [`WorkerResponse::Heard`]), which is faster than the channel's trip through the browser —
/// and the id lets a receiver that hears both act once ([`shared_schema::sync::Seen`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Random; 0 (absent) is never taken for a repeat.
    #[serde(default)]
    pub id: u64,
    /// The message.
    pub msg: Broadcast,
}

impl Envelope {
    /// `msg` under a fresh id, as JSON text.
    pub fn encode(msg: &Broadcast) -> Option<String> {
        serde_json::to_string(&Envelope {
            id: client_wasm::ids::random_u64(),
            msg: msg.clone(),
        })
        .ok()
    }

    /// Reads a message; `None` for anything that is not one.
    pub fn decode(text: &str) -> Option<Envelope> {
        serde_json::from_str(text).ok()
    }

    /// Reads a message heard for the first time ([`shared_schema::sync::Seen::read_first`]: a
    /// repeat is dropped from the id that [`Envelope::encode`] writes first, before its bytes
    /// are decoded again).
    pub fn decode_first(text: &str, seen: &mut shared_schema::sync::Seen) -> Option<Envelope> {
        seen.read_first(text, Self::decode, |e| e.id)
    }

    /// True for a [`Broadcast::Shown`], told without decoding it (its bytes): a worker has no
    /// use for one, and it comes just before the `Staged` the worker pushes.
    pub fn is_shown(text: &str) -> bool {
        text.split_once(",\"msg\":{\"")
            .is_some_and(|(_, kind)| kind.starts_with("shown\""))
    }
}

/// A message on the BroadcastChannel (inside an [`Envelope`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Broadcast {
    /// A tab committed local edits: the syncing worker should push.
    Local {
        /// Workspace id.
        ws: String,
        /// The stored update of the edit (≤ [`CARRY_MAX`] bytes), so other tabs show it without
        /// reading storage first; they refresh from storage afterwards either way.
        #[serde(default)]
        update: Option<Vec<u8>>,
        /// The pending key of the edit's update, so the syncing worker knows whether it was
        /// [`Broadcast::Staged`] (nothing new to read) or must be read from storage.
        #[serde(default)]
        key: Option<String>,
    },
    /// A tab's edit as it is about to be written (≤ [`CARRY_MAX`] bytes): the other tabs show it
    /// now ([`client_wasm::Engine::show_unstored`]); its [`Broadcast::Local`] follows once it is
    /// stored, with the same bytes. Sent while the worker is connected (with the stager).
    Shown {
        /// Workspace id.
        ws: String,
        /// The update as it will be stored (sealed, in an encrypted notebook).
        update: Vec<u8>,
    },
    /// A tab's edit whose write is committing (its key allocated, the flush under way): the
    /// syncing worker pushes it now ([`client_wasm::sync::SyncCore::stage`]); tabs showed it
    /// already ([`Broadcast::Shown`]).
    Staged {
        /// Workspace id.
        ws: String,
        /// The pending key.
        key: String,
        /// The update (sealed, in an encrypted notebook).
        update: Vec<u8>,
        /// The newest other pending key of the workspace when it was stored: the worker pushes
        /// it at once only after that one is on the server.
        #[serde(default)]
        after: Option<String>,
    },
    /// The worker stored pulled updates (tabs should refresh), or verified one tentative live
    /// record (`held`: tabs show `update` now and read nothing; the worker stores it when the
    /// server's marker confirms it, and then sends `Received` again without the update).
    Received {
        /// Workspace id.
        ws: String,
        /// Last pulled seq (the held record's seq, when `held`).
        seq: u64,
        /// The update, when it was one verified live record (as in `Local`).
        #[serde(default)]
        update: Option<Vec<u8>>,
        /// The update is held, not stored yet.
        #[serde(default)]
        held: bool,
    },
    /// Sync status of a workspace.
    Status {
        /// Workspace id.
        ws: String,
        /// The status.
        status: SyncStatus,
        /// Local updates not yet on the server.
        pending: u64,
    },
    /// A tab joined or connected a workspace: some worker should sync it.
    Watch {
        /// Workspace id.
        ws: String,
    },
    /// The notebook's keys changed in storage (a rotation, encryption turned on): every tab
    /// re-reads its record before sealing another edit, so none seals under a revoked key.
    Keys {
        /// Workspace id.
        ws: String,
    },
    /// Who has the workspace open now (from the live channel of the syncing worker).
    Presence {
        /// Workspace id.
        ws: String,
        /// Devices present (this tab among them).
        peers: Vec<shared_schema::api::Peer>,
    },
}
