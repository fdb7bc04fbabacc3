//! [`Client`]: a data file and what a program does with it — join a share link, pick a
//! notebook, sync a round, read the status. The `hearth` command line and the C API are both
//! written on it, so a script and an embedding program behave the same.

use crate::{ReqwestHttp, SqliteStore};
use client_wasm::error::EngineError;
use client_wasm::storage::{StorageError, Store, WorkspaceRecord};
use client_wasm::sync::{Round, SyncCore, SyncError};
use client_wasm::Engine;
use std::path::Path;

/// What a [`Client`] call can fail with. Each has a stable [`code`](ClientError::code).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The data file could not be opened or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A sync failed; its stop reason (if any) is the code.
    #[error("{0}")]
    Sync(#[from] SyncError),
    /// The notebook refused an edit or could not be read.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The text is not a share link.
    #[error("not a Hearth share link (http(s)://host/#/join/…?t=…)")]
    NotALink,
    /// The data file holds no notebook.
    #[error("no notebook here yet: hearth join '<share link>'")]
    NoNotebook,
    /// The data file holds several and none was named.
    #[error("several notebooks here: name one (hearth list)")]
    WhichNotebook,
    /// No notebook with that id in the data file.
    #[error("no notebook {0} here (hearth list)")]
    UnknownNotebook(String),
}

impl ClientError {
    /// A stable code for scripts and C callers: the server's and the browser's stop reasons
    /// (`token_revoked`, `chain_mismatch`, …) for a stopped sync, else one of this enum's.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sync(e) => match e.stop_reason() {
                Some(reason) => reason.as_str(),
                None => "unreachable",
            },
            Self::Storage(_) => "storage",
            Self::Engine(EngineError::ReadOnly) => "read_only",
            Self::Engine(_) => "engine",
            Self::NotALink => "not_a_link",
            Self::NoNotebook => "no_notebook",
            Self::WhichNotebook => "which_notebook",
            Self::UnknownNotebook(_) => "unknown_notebook",
        }
    }
}

/// A notebook's state as the app's status shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// The notebook.
    pub notebook: String,
    /// Its name.
    pub name: String,
    /// `master`, `write` or `read`.
    pub role: String,
    /// The server it syncs with (`None`: this device only).
    pub server: Option<String>,
    /// The last server seq stored here.
    pub seq: u64,
    /// Edits stored here and not yet acknowledged by the server.
    pub pending: usize,
    /// End-to-end encrypted.
    pub encrypted: bool,
}

/// One data file (SQLite) of notebooks, and the HTTP client it syncs with.
#[derive(Clone)]
pub struct Client {
    /// The data file.
    pub store: SqliteStore,
    http: ReqwestHttp,
}

impl Client {
    /// Opens (or creates) the data file at `path`.
    pub fn open(path: &Path) -> Result<Self, ClientError> {
        Self::with_http(path, ReqwestHttp::new())
    }

    /// Opens the data file at `path`, talking to servers through `http` (one that trusts a
    /// company CA: [`ReqwestHttp::with_roots`]).
    pub fn with_http(path: &Path, http: ReqwestHttp) -> Result<Self, ClientError> {
        Ok(Self {
            store: SqliteStore::open(path)?,
            http,
        })
    }

    /// The HTTP client.
    pub fn http(&self) -> &ReqwestHttp {
        &self.http
    }

    /// Stores the notebook and token (and key) of a share link, then syncs it ([`Self::sync_with`]
    /// with `pulled`); returns the notebook's id and the round.
    pub async fn join(
        &self,
        link: &str,
        pulled: impl Fn(u64, usize, Option<u64>) + 'static,
    ) -> Result<(String, Round), ClientError> {
        let link = shared_schema::link::parse(link).map_err(|_| ClientError::NotALink)?;
        client_wasm::sync::join(
            &self.store,
            &self.http,
            &link.server_url,
            &link.workspace,
            &link.token,
            link.key.as_deref(),
        )
        .await?;
        let round = self.sync_with(&link.workspace, pulled).await?;
        Ok((link.workspace, round))
    }

    /// The notebook named by `chosen`, else the only one in the data file.
    pub async fn notebook(&self, chosen: Option<&str>) -> Result<WorkspaceRecord, ClientError> {
        let all = self.store.list_workspaces().await?;
        match chosen {
            Some(id) => all
                .into_iter()
                .find(|w| w.id == id)
                .ok_or_else(|| ClientError::UnknownNotebook(id.to_owned())),
            None if all.len() > 1 => Err(ClientError::WhichNotebook),
            None => all.into_iter().next().ok_or(ClientError::NoNotebook),
        }
    }

    /// Opens a notebook's engine (its migrations run, quarantined records are set aside).
    pub async fn engine(&self, notebook: &str) -> Result<Engine<SqliteStore>, ClientError> {
        Ok(Engine::open(self.store.clone(), notebook).await?)
    }

    /// One sync round — push what is pending, pull what is new — with `pulled(seq, records, head)`
    /// called after each page of the pull; then the engine reads what arrived.
    pub async fn sync_with(
        &self,
        notebook: &str,
        pulled: impl Fn(u64, usize, Option<u64>) + 'static,
    ) -> Result<Round, ClientError> {
        let round = self.round_with(notebook, pulled).await?;
        self.engine(notebook).await?;
        Ok(round)
    }

    /// The sync round of [`Self::sync_with`] alone: what arrived is stored, and read by the
    /// caller's engine (`Engine::refresh`) — a program that keeps its engine open, like the C
    /// API's handle, need not open it again.
    pub async fn round_with(
        &self,
        notebook: &str,
        pulled: impl Fn(u64, usize, Option<u64>) + 'static,
    ) -> Result<Round, ClientError> {
        Ok(SyncCore::new(self.store.clone(), self.http.clone())
            .on_pull_page(pulled)
            .sync_once(notebook, &|_, _| {})
            .await?)
    }

    /// [`Self::round_with`] without progress.
    pub async fn round(&self, notebook: &str) -> Result<Round, ClientError> {
        self.round_with(notebook, |_, _, _| {}).await
    }

    /// [`Self::sync_with`] without progress.
    pub async fn sync(&self, notebook: &str) -> Result<Round, ClientError> {
        self.sync_with(notebook, |_, _, _| {}).await
    }

    /// The notebook's status.
    pub async fn status(&self, notebook: &str) -> Result<Status, ClientError> {
        let record = self.notebook(Some(notebook)).await?;
        Ok(Status {
            pending: self.store.pending_len(notebook).await?,
            notebook: record.id,
            name: record.name,
            role: record.role.as_str().to_owned(),
            server: record.server_url,
            seq: record.last_pulled_seq,
            encrypted: record.keys.is_some(),
        })
    }
}
