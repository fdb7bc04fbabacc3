//! The sync core's [`Transport`] over any HTTP client: every server call of the protocol
//! (`docs/protocol.md`) written once, on top of [`Http`] — one request, one reply. The browser's
//! `fetch` ([`super::fetch::FetchTransport`]) and the native client's `reqwest` implement
//! [`Http`]; everything else (paths, bodies, error replies) is this module's, so both speak the
//! protocol the same way.

use super::{Pulled, Remote, Transport, TransportError};
use shared_schema::api::{
    CreatedWorkspace, JoinInfo, MintTokenRequest, MintedToken, PushReply, PutKeys, TokenList,
};
use shared_schema::{ErrorBody, ErrorCode};

/// A reply, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// HTTP status.
    pub status: u16,
    /// The `Hearth-More` header was set.
    pub more: bool,
    /// The `Hearth-Head-Seq` header, if it was set and a number.
    pub head_seq: Option<u64>,
    /// Body.
    pub body: Vec<u8>,
}

/// One HTTP exchange: `method` on `url` with a bearer `token` and a `(content type, bytes)` body.
/// A reply with any status is `Ok`; `Err` is for no reply at all (the request may or may not
/// have been applied).
#[allow(async_fn_in_trait)]
pub trait Http {
    /// Sends the request and reads the whole reply.
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Result<HttpReply, TransportError>;
}

/// Decodes an error reply (the server's `{"error":{"code","message"}}`, or a bare status).
pub fn api_error(status: u16, body: &[u8]) -> TransportError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => TransportError::Api {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => TransportError::Api {
            status,
            code: match status {
                413 => ErrorCode::PayloadTooLarge,
                429 => ErrorCode::RateLimited,
                s if s >= 500 => ErrorCode::StorageUnavailable,
                _ => ErrorCode::BadRequest,
            },
            message: format!("the server answered {status}"),
        },
    }
}

/// Sends a request through `http`; a reply outside 2xx is a [`TransportError::Api`].
async fn call<H: Http + ?Sized>(
    http: &H,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<HttpReply, TransportError> {
    let reply = http.send(method, url, token, body).await?;
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        Err(api_error(reply.status, &reply.body))
    }
}

fn json<T: serde::de::DeserializeOwned>(reply: &HttpReply) -> Result<T, TransportError> {
    serde_json::from_slice(&reply.body)
        .map_err(|e| TransportError::Network(format!("an unexpected reply: {e}")))
}

fn encode<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, TransportError> {
    serde_json::to_vec(body)
        .map_err(|e| TransportError::Network(format!("cannot encode the request: {e}")))
}

const BYTES: &str = "application/octet-stream";
const JSON: &str = "application/json";

impl<H: Http> Transport for H {
    async fn push(&self, remote: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError> {
        let url = remote.url("/updates");
        json(
            &call(
                self,
                "POST",
                &url,
                Some(&remote.token),
                Some((BYTES, &body)),
            )
            .await?,
        )
    }

    async fn pull(&self, remote: &Remote, after: u64) -> Result<Pulled, TransportError> {
        let url = remote.url(&format!("/updates?after={after}"));
        let reply = call(self, "GET", &url, Some(&remote.token), None).await?;
        Ok(Pulled {
            more: reply.more,
            head_seq: reply.head_seq,
            body: reply.body,
        })
    }

    async fn put_snapshot(
        &self,
        remote: &Remote,
        covers: u64,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError> {
        let url = remote.url(&format!("/snapshot?covers={covers}"));
        call(
            self,
            "PUT",
            &url,
            Some(&remote.token),
            Some((BYTES, &bytes)),
        )
        .await
        .map(|_| ())
    }

    async fn join(&self, remote: &Remote) -> Result<JoinInfo, TransportError> {
        json(&call(self, "GET", &remote.url(""), Some(&remote.token), None).await?)
    }

    async fn create(
        &self,
        server_url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError> {
        let body = serde_json::json!({ "workspace_id": ws, "creation_secret": secret }).to_string();
        let url = format!("{server_url}/v1/workspaces");
        json(&call(self, "POST", &url, None, Some((JSON, body.as_bytes()))).await?)
    }

    async fn rotate(
        &self,
        remote: &Remote,
        rotation_id: &str,
    ) -> Result<MintedToken, TransportError> {
        let body = serde_json::json!({ "rotation_id": rotation_id }).to_string();
        let url = remote.url("/tokens/rotate");
        json(
            &call(
                self,
                "POST",
                &url,
                Some(&remote.token),
                Some((JSON, body.as_bytes())),
            )
            .await?,
        )
    }

    async fn mint(
        &self,
        remote: &Remote,
        body: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError> {
        let body = encode(body)?;
        let url = remote.url("/tokens");
        json(&call(self, "POST", &url, Some(&remote.token), Some((JSON, &body))).await?)
    }

    async fn put_keys(&self, remote: &Remote, keys: &PutKeys) -> Result<(), TransportError> {
        let body = encode(keys)?;
        let url = remote.url("/keys");
        call(self, "PUT", &url, Some(&remote.token), Some((JSON, &body)))
            .await
            .map(|_| ())
    }

    async fn list_tokens(&self, remote: &Remote) -> Result<TokenList, TransportError> {
        json(
            &call(
                self,
                "GET",
                &remote.url("/tokens"),
                Some(&remote.token),
                None,
            )
            .await?,
        )
    }

    async fn revoke(&self, remote: &Remote, token_id: &str) -> Result<(), TransportError> {
        let url = remote.url(&format!("/tokens/{token_id}"));
        call(self, "DELETE", &url, Some(&remote.token), None)
            .await
            .map(|_| ())
    }
}
