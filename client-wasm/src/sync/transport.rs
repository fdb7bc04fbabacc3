//! The server as the sync core sees it: [`Transport`] (its calls), [`Remote`] (where and as
//! whom), [`Pulled`] (a page off the wire) and [`TransportError`].

use super::*;

/// Where and as whom a workspace syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Server base URL (no trailing slash).
    pub server_url: String,
    /// Workspace id.
    pub ws: String,
    /// Bearer token.
    pub token: String,
}

impl Remote {
    /// `{server}/v1/workspaces/{ws}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/workspaces/{}{path}", self.server_url, self.ws)
    }
}

/// A pulled page as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The pull-stream body.
    pub body: Vec<u8>,
    /// `Hearth-More: 1` was set.
    pub more: bool,
    /// The workspace's head seq (`Hearth-Head-Seq`), if the server said it: how far a pull has
    /// to go (progress).
    pub head_seq: Option<u64>,
}

/// A server call failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TransportError {
    /// The server could not be reached, or the connection dropped (the request may or may not
    /// have been applied).
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
}

/// The server, as the sync core sees it. `?Send`: on wasm32 it runs on one thread.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// `POST …/updates` with a push batch.
    async fn push(&self, remote: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError>;
    /// `GET …/updates?after=N`.
    async fn pull(&self, remote: &Remote, after: u64) -> Result<Pulled, TransportError>;
    /// `PUT …/snapshot?covers=N`.
    async fn put_snapshot(
        &self,
        remote: &Remote,
        covers: u64,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError>;
    /// `GET /v1/workspaces/{id}`: checks the token.
    async fn join(&self, remote: &Remote) -> Result<JoinInfo, TransportError>;
    /// `POST /v1/workspaces` with the workspace's own id.
    /// Registers `ws` with its creation secret; the same id and secret give the same token.
    async fn create(
        &self,
        server_url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError>;
    /// `POST …/tokens/rotate` with `{"rotation_id"}` (idempotent).
    async fn rotate(
        &self,
        remote: &Remote,
        rotation_id: &str,
    ) -> Result<MintedToken, TransportError>;
    /// `POST …/tokens` (master): a share token.
    async fn mint(
        &self,
        remote: &Remote,
        request: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError>;
    /// `PUT …/keys` (master): wrapped epoch keys for links.
    async fn put_keys(&self, remote: &Remote, keys: &PutKeys) -> Result<(), TransportError>;
    /// `GET …/tokens` (master): every token of the workspace.
    async fn list_tokens(&self, remote: &Remote) -> Result<TokenList, TransportError>;
    /// `DELETE …/tokens/{id}` (master).
    async fn revoke(&self, remote: &Remote, token_id: &str) -> Result<(), TransportError>;
}
