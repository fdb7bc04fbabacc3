//! [`MemoryServer`]: the in-memory twin of `hearth-server`, as [`MemoryStore`] is the twin of
//! IndexedDB. It keeps workspaces, tokens and logs in memory and applies the server's own log rules
//! (`shared_schema::log`: seqs, key dedupe, page cut, snapshot covers) and its role checks, so the
//! sync core's tests and the fault simulation run against the rules production runs. It never
//! decodes Loro.
//!
//! [`MemoryStore`]: crate::storage::MemoryStore

use super::{Pulled, Remote, Transport, TransportError};
use base64::Engine as _;
use shared_schema::api::{
    CreatedWorkspace, JoinInfo, LiveEvent, MintTokenRequest, MintedToken, PushReply, PutKeys,
    TokenInfo, TokenList, WrappedKey,
};
use shared_schema::frame::{self, PullRecord, PullRecordKind};
use shared_schema::live;
use shared_schema::log::{self, LogError};
use shared_schema::{Chain, ErrorCode, Role};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// One stored update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdate {
    /// Idempotency key.
    pub key: Vec<u8>,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// Chain after it.
    pub chain: Chain,
    /// When it was stored (server clock, seconds).
    pub at: u64,
}

/// One workspace's log.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Head seq.
    pub head: u64,
    /// Chain at the head.
    pub chain: Chain,
    /// Stored updates by seq.
    pub updates: BTreeMap<u64, StoredUpdate>,
    /// Every idempotency key ever stored → its seq (kept after the update is dropped).
    pub keys: HashMap<Vec<u8>, u64>,
    /// The snapshot: (covers, chain at covers, bytes, stored at).
    pub snapshot: Option<(u64, Chain, Vec<u8>, u64)>,
    /// The creation secret and the master token it was answered with.
    pub creation: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct Token {
    ws: String,
    role: Role,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    logs: BTreeMap<String, Log>,
    tokens: HashMap<String, Token>,
    /// (rotated token, rotation id) → the token it minted.
    rotations: HashMap<(String, String), String>,
    minted: u64,
    now: u64,
    pulls: u64,
    /// Wrapped keys: (workspace, token id) → (epoch → wrapped). A token's id is the token itself.
    keys: HashMap<(String, String), BTreeMap<u32, Vec<u8>>>,
    /// A forking server ([`MemoryServer::fork_for`]): (token, first forked seq).
    fork: Option<(String, u64)>,
}

/// Limits of the twin, as the server's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest push body (`HEARTH_MAX_UPDATE_BYTES`).
    pub max_push: usize,
    /// Largest pull page (`HEARTH_MAX_PULL_BYTES`).
    pub max_pull: usize,
    /// Seconds a covered update is kept after its snapshot (`HEARTH_RETENTION_SECS`).
    pub retention: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_push: 4 * 1024 * 1024,
            max_pull: 8 * 1024 * 1024,
            retention: 7 * 24 * 3600,
        }
    }
}

/// The in-memory server. Clones share state (several clients of one server).
#[derive(Clone, Default)]
pub struct MemoryServer {
    state: Rc<RefCell<State>>,
    limits: Rc<RefCell<Limits>>,
}

fn api(code: ErrorCode, message: impl Into<String>) -> TransportError {
    TransportError::Api {
        status: code.http_status(),
        code,
        message: message.into(),
    }
}

impl MemoryServer {
    /// A server with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the limits.
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.borrow_mut() = limits;
    }

    /// Moves the server clock forward (retention).
    pub fn advance_clock(&self, secs: u64) {
        self.state.borrow_mut().now += secs;
    }

    /// Mints a token for `ws` (as the owner would).
    pub fn mint(&self, ws: &str, role: Role) -> String {
        let mut s = self.state.borrow_mut();
        s.minted += 1;
        let token = format!("h.{}.{}", s.minted, ws.replace('-', ""));
        s.tokens.insert(
            token.clone(),
            Token {
                ws: ws.to_owned(),
                role,
                revoked: false,
            },
        );
        token
    }

    /// `POST …/tokens` as the transport calls it (the owner's token checked): a share token.
    pub async fn mint_token(
        &self,
        remote: &Remote,
        request: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError> {
        self.authorize(remote, Role::Master)?;
        if request.role == Role::Master {
            return Err(api(ErrorCode::BadRequest, "mint read or write tokens"));
        }
        let token = self.mint(&remote.ws, request.role);
        Ok(MintedToken {
            id: token.clone(),
            token,
            role: request.role,
            expires_at: None,
        })
    }

    /// Revokes a token.
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.state.borrow_mut().tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Makes this server fork (what a hostile server could do, for tests): from now on, pulls
    /// with `token` see the update at the next seq replaced by a replay of the one before it, with
    /// chain values recomputed from there — each view verifies on its own, only the two views
    /// differ.
    pub fn fork_for(&self, token: &str) {
        let mut s = self.state.borrow_mut();
        let head = s
            .tokens
            .get(token)
            .and_then(|t| s.logs.get(&t.ws))
            .map_or(0, |l| l.head);
        s.fork = Some((token.to_owned(), head + 1));
    }

    /// A copy of a workspace's log.
    pub fn log(&self, ws: &str) -> Option<Log> {
        self.state.borrow().logs.get(ws).cloned()
    }

    /// The whole log as a pull from seq 0 would return it (snapshot first), unpaged.
    pub fn records(&self, ws: &str) -> Vec<PullRecord> {
        let Some(l) = self.log(ws) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut after = 0;
        if let Some((covers, chain, bytes, _)) = &l.snapshot {
            out.push(PullRecord {
                kind: PullRecordKind::Snapshot,
                seq: *covers,
                chain: *chain,
                bytes: bytes.clone(),
            });
            after = *covers;
        }
        out.extend(l.updates.range(after + 1..).map(|(seq, u)| PullRecord {
            kind: PullRecordKind::Update,
            seq: *seq,
            chain: u.chain,
            bytes: u.bytes.clone(),
        }));
        out
    }

    /// The events the server's live channel sends for stored update `seq`, as its writer sends
    /// them (`shared_schema::live`): the tentative record when it is small, then the marker
    /// with the chain after it.
    pub fn live_events(&self, ws: &str, seq: u64) -> Vec<LiveEvent> {
        let s = self.state.borrow();
        let Some(u) = s.logs.get(ws).and_then(|l| l.updates.get(&seq)) else {
            return Vec::new();
        };
        live::tentative(seq, &u.chain, &u.bytes)
            .into_iter()
            .chain([live::marker(seq, u.chain)])
            .collect()
    }

    /// How many pulls the server answered.
    pub fn pulls(&self) -> u64 {
        self.state.borrow().pulls
    }

    fn authorize(&self, remote: &Remote, need: Role) -> Result<Role, TransportError> {
        let s = self.state.borrow();
        let t = s
            .tokens
            .get(&remote.token)
            .ok_or_else(|| api(ErrorCode::InvalidToken, "not a token of this server"))?;
        if t.ws != remote.ws {
            return Err(api(
                ErrorCode::WrongWorkspace,
                "the token is for another workspace",
            ));
        }
        if !s.logs.contains_key(&remote.ws) {
            return Err(api(ErrorCode::NotFound, "workspace not found"));
        }
        if t.revoked {
            return Err(api(ErrorCode::TokenRevoked, "the token was revoked"));
        }
        let allowed = match need {
            Role::Read => true,
            Role::Write => t.role.can_write(),
            Role::Master => t.role == Role::Master,
        };
        if !allowed {
            return Err(api(
                ErrorCode::Forbidden,
                "the token's role may not do this",
            ));
        }
        Ok(t.role)
    }
}

fn conflict(e: LogError) -> TransportError {
    match e {
        LogError::SeqOverflow { .. } => api(ErrorCode::BadRequest, e.to_string()),
        _ => api(ErrorCode::Conflict, e.to_string()),
    }
}

impl Transport for MemoryServer {
    async fn push(&self, remote: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError> {
        self.authorize(remote, Role::Write)?;
        if body.len() > self.limits.borrow().max_push {
            return Err(api(
                ErrorCode::PayloadTooLarge,
                "the batch is over the limit",
            ));
        }
        let records = frame::decode_push_batch(&body)
            .map_err(|e| api(ErrorCode::MalformedFrame, e.to_string()))?;
        log::check_batch(&records).map_err(|e| api(ErrorCode::MalformedFrame, e.to_string()))?;
        let mut s = self.state.borrow_mut();
        let now = s.now;
        let l = s
            .logs
            .get_mut(&remote.ws)
            .ok_or_else(|| api(ErrorCode::NotFound, "workspace not found"))?;
        let known: HashMap<Vec<u8>, u64> = records
            .iter()
            .filter_map(|r| l.keys.get(&r.key).map(|seq| (r.key.clone(), *seq)))
            .collect();
        let assigned = log::assign_batch(l.head, l.chain, &records, &known).map_err(conflict)?;
        for f in &assigned.fresh {
            let r = &records[f.index];
            l.keys.insert(r.key.clone(), f.seq);
            l.updates.insert(
                f.seq,
                StoredUpdate {
                    key: r.key.clone(),
                    bytes: r.bytes.clone(),
                    chain: f.chain,
                    at: now,
                },
            );
        }
        (l.head, l.chain) = (assigned.head, assigned.chain);
        Ok(PushReply {
            seqs: assigned.seqs,
            head_seq: l.head,
            chain: l.chain,
        })
    }

    async fn pull(&self, remote: &Remote, after: u64) -> Result<Pulled, TransportError> {
        self.authorize(remote, Role::Read)?;
        self.state.borrow_mut().pulls += 1;
        let limit = self.limits.borrow().max_pull;
        let s = self.state.borrow();
        let l = s
            .logs
            .get(&remote.ws)
            .ok_or_else(|| api(ErrorCode::NotFound, "workspace not found"))?;
        let mut body = Vec::new();
        let (mut count, mut size, mut after, mut more) = (0usize, 0usize, after, false);
        let encode = |body: &mut Vec<u8>, kind, seq, chain: &Chain, bytes: &[u8]| {
            frame::encode_pull_record(body, kind, seq, chain, bytes)
                .map_err(|e| api(ErrorCode::Internal, e.to_string()))
        };
        if let Some((covers, chain, bytes, _)) = &l.snapshot {
            if after < *covers {
                encode(&mut body, PullRecordKind::Snapshot, *covers, chain, bytes)?;
                count += 1;
                size += log::record_size(bytes.len());
                after = *covers;
            }
        }
        // The forked view, for the token a fork was made for.
        let mut view: BTreeMap<u64, (Chain, Vec<u8>)> = BTreeMap::new();
        if let Some((_, at)) = s.fork.as_ref().filter(|(t, _)| *t == remote.token) {
            let before = l.updates.get(&(at - 1));
            let mut chain = before.map_or(Chain::genesis(), |u| u.chain);
            let replay = before.map(|u| u.bytes.clone()).unwrap_or_default();
            for (seq, u) in l.updates.range(at..) {
                let bytes = if seq == at {
                    replay.clone()
                } else {
                    u.bytes.clone()
                };
                chain = chain.next(&bytes);
                view.insert(*seq, (chain, bytes));
            }
        }
        for (seq, u) in l.updates.range(after + 1..) {
            if !log::page_admits(count, size, u.bytes.len(), limit) {
                more = true;
                break;
            }
            let (chain, bytes) = view.get(seq).map_or((&u.chain, &u.bytes), |(c, b)| (c, b));
            encode(&mut body, PullRecordKind::Update, *seq, chain, bytes)?;
            count += 1;
            size += log::record_size(u.bytes.len());
        }
        Ok(Pulled {
            body,
            more,
            head_seq: Some(l.head),
        })
    }

    async fn put_snapshot(
        &self,
        remote: &Remote,
        covers: u64,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError> {
        self.authorize(remote, Role::Master)?;
        if bytes.is_empty() {
            return Err(api(ErrorCode::BadRequest, "the snapshot is empty"));
        }
        let retention = self.limits.borrow().retention;
        let mut s = self.state.borrow_mut();
        let now = s.now;
        let l = s
            .logs
            .get_mut(&remote.ws)
            .ok_or_else(|| api(ErrorCode::NotFound, "workspace not found"))?;
        let stored = l.snapshot.as_ref().map_or(0, |(c, ..)| *c);
        log::check_covers(covers, l.head, stored).map_err(conflict)?;
        let chain = if covers == 0 {
            Chain::genesis()
        } else if let Some(u) = l.updates.get(&covers) {
            u.chain
        } else if let Some((c, chain, ..)) = &l.snapshot {
            if *c != covers {
                return Err(api(
                    ErrorCode::Conflict,
                    format!("seq {covers} is no longer stored"),
                ));
            }
            *chain
        } else {
            return Err(api(
                ErrorCode::Conflict,
                format!("seq {covers} is no longer stored"),
            ));
        };
        l.snapshot = Some((covers, chain, bytes, now));
        // Retention counts from the snapshot: covered updates go once it is old enough. The twin
        // drops them at the next snapshot after the window.
        let cutoff = now.saturating_sub(retention);
        l.updates.retain(|seq, u| *seq > covers || u.at > cutoff);
        Ok(())
    }

    async fn join(&self, remote: &Remote) -> Result<JoinInfo, TransportError> {
        let role = self.authorize(remote, Role::Read)?;
        let head = self
            .state
            .borrow()
            .logs
            .get(&remote.ws)
            .map_or(0, |l| l.head);
        let keys = self
            .state
            .borrow()
            .keys
            .get(&(remote.ws.clone(), remote.token.clone()))
            .map(|k| {
                k.iter()
                    .map(|(epoch, w)| WrappedKey {
                        token_id: remote.token.clone(),
                        epoch: *epoch,
                        wrapped: base64::engine::general_purpose::STANDARD.encode(w),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(JoinInfo {
            workspace_id: remote.ws.clone(),
            role,
            head_seq: head,
            expires_at: None,
            token_id: remote.token.clone(),
            keys,
        })
    }

    async fn create(
        &self,
        _server_url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError> {
        {
            let s = self.state.borrow();
            if let Some(log) = s.logs.get(ws) {
                // The same secret repeats the create (a lost reply): the same token, if still valid.
                return match &log.creation {
                    Some((stored, token))
                        if stored == secret && s.tokens.get(token).is_some_and(|t| !t.revoked) =>
                    {
                        Ok(CreatedWorkspace {
                            workspace_id: ws.to_owned(),
                            master_token: token.clone(),
                        })
                    }
                    _ => Err(api(
                        ErrorCode::Conflict,
                        "a workspace with this id already exists",
                    )),
                };
            }
        }
        self.state
            .borrow_mut()
            .logs
            .insert(ws.to_owned(), Log::default());
        let master_token = self.mint(ws, Role::Master);
        if let Some(log) = self.state.borrow_mut().logs.get_mut(ws) {
            log.creation = Some((secret.to_owned(), master_token.clone()));
        }
        Ok(CreatedWorkspace {
            workspace_id: ws.to_owned(),
            master_token,
        })
    }

    async fn rotate(
        &self,
        remote: &Remote,
        rotation_id: &str,
    ) -> Result<MintedToken, TransportError> {
        let minted = |token: String| MintedToken {
            id: token.clone(),
            token,
            role: Role::Master,
            expires_at: None,
        };
        let key = (remote.token.clone(), rotation_id.to_owned());
        match self.authorize(remote, Role::Master) {
            Ok(_) => {}
            // The same rotation again (its reply was lost): the same token, if still valid.
            Err(
                e @ TransportError::Api {
                    code: ErrorCode::TokenRevoked,
                    ..
                },
            ) => {
                let s = self.state.borrow();
                return match s.rotations.get(&key) {
                    Some(t) if s.tokens.get(t).is_some_and(|t| !t.revoked) => Ok(minted(t.clone())),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
        let token = self.mint(&remote.ws, Role::Master);
        let mut s = self.state.borrow_mut();
        s.rotations.insert(key, token.clone());
        for (t, info) in s.tokens.iter_mut() {
            if info.ws == remote.ws && info.role == Role::Master && *t != token {
                info.revoked = true;
            }
        }
        Ok(minted(token))
    }

    async fn mint(
        &self,
        remote: &Remote,
        request: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError> {
        self.mint_token(remote, request).await
    }

    async fn list_tokens(&self, remote: &Remote) -> Result<TokenList, TransportError> {
        self.authorize(remote, Role::Master)?;
        let s = self.state.borrow();
        let mut tokens: Vec<TokenInfo> = s
            .tokens
            .iter()
            .filter(|(_, t)| t.ws == remote.ws)
            .map(|(id, t)| TokenInfo {
                id: id.clone(),
                role: t.role,
                label: String::new(),
                created_at: 0,
                expires_at: None,
                revoked_at: t.revoked.then_some(s.now),
            })
            .collect();
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(TokenList { tokens })
    }

    async fn revoke(&self, remote: &Remote, token_id: &str) -> Result<(), TransportError> {
        self.authorize(remote, Role::Master)?;
        let known = self
            .state
            .borrow()
            .tokens
            .get(token_id)
            .is_some_and(|t| t.ws == remote.ws);
        if !known {
            return Err(api(ErrorCode::NotFound, "no such token"));
        }
        MemoryServer::revoke(self, token_id);
        Ok(())
    }

    async fn put_keys(&self, remote: &Remote, keys: &PutKeys) -> Result<(), TransportError> {
        self.authorize(remote, Role::Master)?;
        let mut rows = Vec::with_capacity(keys.keys.len());
        for k in &keys.keys {
            let wrapped = base64::engine::general_purpose::STANDARD
                .decode(&k.wrapped)
                .ok()
                .filter(|w| w.len() == shared_schema::seal::WRAPPED_LEN)
                .ok_or_else(|| api(ErrorCode::BadRequest, "a wrapped key is 72 bytes"))?;
            rows.push((k.token_id.clone(), k.epoch, wrapped));
        }
        let mut s = self.state.borrow_mut();
        if rows
            .iter()
            .any(|(t, _, _)| s.tokens.get(t).is_none_or(|t| t.ws != remote.ws))
        {
            return Err(api(
                ErrorCode::Conflict,
                "a key names another workspace's token",
            ));
        }
        for (token_id, epoch, wrapped) in rows {
            s.keys
                .entry((remote.ws.clone(), token_id))
                .or_default()
                .insert(epoch, wrapped);
        }
        Ok(())
    }
}
