//! A workspace's record — where it syncs, as whom, how far, with which keys — and the only way
//! it changes: [`apply_change`], run inside a store's transaction on the record it just read.

use super::*;

/// What the client knows about one workspace (the `workspaces` store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    /// Workspace id.
    pub id: String,
    /// Display name (also kept in the document).
    pub name: String,
    /// This device's role; `master` for a workspace created here.
    pub role: Role,
    /// Access or master token, if the workspace syncs.
    pub token: Option<String>,
    /// Server base URL, if the workspace syncs.
    pub server_url: Option<String>,
    /// Highest seq pulled from the server. Never decreases.
    pub last_pulled_seq: u64,
    /// Chain value at `last_pulled_seq`.
    pub chain_head: Chain,
    /// Schema version of the document after the last open.
    pub schema_version: i64,
    /// Counter of the next pending key: pending order is causal order on this device.
    #[serde(default)]
    pub next_pending: u64,
    /// The seq the local snapshot covers (received records ≤ it are in the snapshot).
    #[serde(default)]
    pub snapshot_covers: u64,
    /// A token rotation begun and not yet stored: its id, repeated until the new token is stored
    /// (the server answers a repeated rotation with the same token).
    #[serde(default)]
    pub rotating: Option<String>,
    /// The secret this device registers the workspace with (`POST /v1/workspaces`), stored
    /// before the first attempt: a retry after a lost reply gets the same master token.
    #[serde(default)]
    pub creation_secret: Option<String>,
    /// The highest pending key the sync worker has read for a push: updates up to it may be on
    /// the server already, so an edit is never merged into them ([`Store::append_pending`]).
    #[serde(default)]
    pub pushed_upto: Option<String>,
    /// The notebook's keys on this device ([`crate::keys`]); `None` for a plain notebook, made
    /// before encryption existed or joined with a link that carried no key.
    #[serde(default)]
    pub keys: Option<shared_schema::seal::KeyRing>,
    /// The chain values (their first 8 bytes) at the last [`CHAIN_HISTORY`] pulled seqs, oldest
    /// first: what a sealed record's witness is checked against ([`crate::keys::disagrees`]).
    #[serde(default)]
    pub recent_chains: Vec<(u64, [u8; shared_schema::seal::WITNESS_CHAIN_LEN])>,
    /// A member's edit said the server showed it another history at this seq: sync stops with
    /// `server_fork` until the user acts.
    #[serde(default)]
    pub forked: Option<u64>,
}

/// How many pulled seqs' chain values a workspace record keeps for witness checks. A witness
/// older than that (its author was far behind) is not checked.
pub const CHAIN_HISTORY: usize = 64;

/// Adds a stored page's chain values to the record's history (every store calls it in the
/// transaction that stores the page).
pub fn remember_chains(record: &mut WorkspaceRecord, chains: &[(u64, Chain)]) {
    for (seq, chain) in chains {
        let w = shared_schema::seal::Witness::new(*seq, chain);
        record.recent_chains.retain(|(s, _)| s != seq);
        record.recent_chains.push((*seq, w.chain));
    }
    let extra = record.recent_chains.len().saturating_sub(CHAIN_HISTORY);
    record.recent_chains.drain(..extra);
}

impl WorkspaceRecord {
    /// A new local workspace owned by this device, with no server yet.
    pub fn new_local(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            role: Role::Master,
            token: None,
            server_url: None,
            last_pulled_seq: 0,
            chain_head: Chain::genesis(),
            schema_version: 0,
            next_pending: 0,
            snapshot_covers: 0,
            rotating: None,
            creation_secret: None,
            pushed_upto: None,
            keys: None,
            recent_chains: Vec::new(),
            forked: None,
        }
    }
}

/// One change to a workspace's metadata, applied inside the store's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Sync with a server under a token (join link, or registering the workspace). Applies only
    /// when the device has no token yet or the new role is stronger: a link never replaces a
    /// stronger or equal token.
    Remote {
        /// Server base URL.
        server_url: String,
        /// Token.
        token: String,
        /// Its role.
        role: Role,
    },
    /// A keyed link opened on a device that holds the notebook plain, on a member's token:
    /// turning encryption on revoked every plain link, so the new link's token replaces the old
    /// one whatever their roles. Never applies to the owner's (master) record or across servers.
    Relink {
        /// Server base URL.
        server_url: String,
        /// Token.
        token: String,
        /// Its role.
        role: Role,
    },
    /// A token rotation with this id begins (kept if one is already under way).
    BeginRotation(String),
    /// A rotated token replaces `old` (and only `old`); the rotation under way ends.
    Token {
        /// The token the rotation was made with.
        old: String,
        /// The new token.
        new: String,
    },
    /// The creation secret to register the workspace with (kept if one is already stored).
    CreationSecret(String),
    /// The display name.
    Name(String),
    /// The document's schema version after an open.
    SchemaVersion(i64),
    /// A sealed record's witness disagreed with this device's chain at this seq.
    Forked(u64),
    /// Keys learnt (at a join, or after a rotation): epochs not held yet are added, secrets
    /// this device lacks are set; nothing held is ever replaced.
    Keys(shared_schema::seal::KeyRing),
}

/// What [`Store::update_workspace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// The change applied; the record as stored now.
    Changed(WorkspaceRecord),
    /// The change did not apply (a weaker token, a stale rotation); the record as stored.
    Unchanged(WorkspaceRecord),
    /// No such workspace.
    Missing,
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Read => 0,
        Role::Write => 1,
        Role::Master => 2,
    }
}

/// Applies a change to a record; false when the rules refuse it (the one statement of those rules,
/// used by every store inside its transaction).
pub fn apply_change(record: &mut WorkspaceRecord, change: &Change) -> bool {
    match change {
        Change::Remote {
            server_url,
            token,
            role,
        } => {
            // A local-only workspace (no token) is owned here: only a master token may attach it.
            let stronger = match record.token {
                None => rank(*role) >= rank(record.role),
                Some(_) => rank(*role) > rank(record.role),
            };
            let same_server = record.server_url.is_none()
                || record.server_url.as_deref() == Some(server_url.as_str());
            if !stronger || !same_server {
                return false;
            }
            record.server_url = Some(server_url.clone());
            record.token = Some(token.clone());
            record.role = *role;
            true
        }
        Change::Relink {
            server_url,
            token,
            role,
        } => {
            if record.role.is_master()
                || record.server_url.as_deref() != Some(server_url.as_str())
                || record.token.as_deref() == Some(token.as_str())
            {
                return false;
            }
            record.token = Some(token.clone());
            record.role = *role;
            true
        }
        Change::BeginRotation(id) => {
            if record.rotating.is_some() {
                return false;
            }
            record.rotating = Some(id.clone());
            true
        }
        Change::Token { old, new } => {
            if record.token.as_deref() != Some(old.as_str()) {
                return false;
            }
            record.token = Some(new.clone());
            record.rotating = None;
            true
        }
        Change::CreationSecret(secret) => {
            if record.creation_secret.is_some() {
                return false;
            }
            record.creation_secret = Some(secret.clone());
            true
        }
        Change::Name(name) => {
            let changed = &record.name != name;
            record.name = name.clone();
            changed
        }
        Change::SchemaVersion(v) => {
            let changed = record.schema_version != *v;
            record.schema_version = *v;
            changed
        }
        Change::Forked(seq) => {
            if record.forked.is_some() {
                return false;
            }
            record.forked = Some(*seq);
            true
        }
        Change::Keys(learnt) => {
            // A notebook held plain until now keeps reading what it pulled (and typed) before.
            let plain_through = match (&record.keys, learnt.plain_through) {
                (None, None) => Some(record.last_pulled_seq),
                (_, given) => given,
            };
            let ring = record.keys.get_or_insert_with(Default::default);
            let mut changed = false;
            if ring.plain_through.is_none() && plain_through.is_some() {
                ring.plain_through = plain_through;
                changed = true;
            }
            changed |= ring.add(learnt.epochs.iter().cloned());
            if ring.link_secret.is_none() && learnt.link_secret.is_some() {
                ring.link_secret = learnt.link_secret.clone();
                changed = true;
            }
            if ring.owner_secret.is_none() && learnt.owner_secret.is_some() {
                ring.owner_secret = learnt.owner_secret.clone();
                changed = true;
            }
            if ring.next.is_none() && learnt.next.is_some() {
                ring.next = learnt.next.clone();
                changed = true;
            }
            // A rotation is over once its key is an epoch of the ring.
            if ring
                .next
                .as_ref()
                .is_some_and(|n| ring.key(n.epoch).is_some())
            {
                ring.next = None;
                changed = true;
            }
            changed
        }
    }
}
