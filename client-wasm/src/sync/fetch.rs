//! `fetch` (wasm32 only; in a worker or a page): [`FetchTransport`], the browser's [`Transport`]
//! for the sync core — used by the sync worker and by the plain-JavaScript API alike — and the
//! requests the worker streams (the live channel). Error bodies become typed [`TransportError`]s.

use super::{Pulled, Remote, Transport, TransportError};
use js_sys::{Promise, Uint8Array};
use shared_schema::api::{
    CreatedWorkspace, JoinInfo, MintTokenRequest, MintedToken, PushReply, PutKeys, TokenList,
    HEADER_MORE,
};
use shared_schema::{ErrorBody, ErrorCode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response, Window, WorkerGlobalScope};

/// `fetch(request)` in a page or a worker.
fn fetch(request: &Request) -> Promise {
    let global = js_sys::global();
    match global.dyn_ref::<Window>() {
        Some(window) => window.fetch_with_request(request),
        None => global
            .unchecked_ref::<WorkerGlobalScope>()
            .fetch_with_request(request),
    }
}

fn js(e: JsValue) -> TransportError {
    TransportError::Network(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Sleeps `ms` milliseconds.
pub async fn sleep_ms(ms: u64) {
    let ms = ms.min(i32::MAX as u64) as i32;
    let p = Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let _ = match global.dyn_ref::<Window>() {
            Some(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms),
            None => global
                .unchecked_ref::<WorkerGlobalScope>()
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms),
        };
    });
    let _ = JsFuture::from(p).await;
}

/// A successful reply.
pub struct Reply {
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// Sends a request and returns the response object (for streaming) without reading the body.
pub async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Response, TransportError> {
    let headers = Headers::new().map_err(js)?;
    if let Some(t) = token {
        headers
            .set("Authorization", &format!("Bearer {t}"))
            .map_err(js)?;
    }
    let init = RequestInit::new();
    init.set_method(method);
    if let Some((content_type, bytes)) = body {
        headers.set("Content-Type", content_type).map_err(js)?;
        init.set_body(&Uint8Array::from(bytes).into());
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init).map_err(js)?;
    let response = JsFuture::from(fetch(&request))
        .await
        .map_err(|_| TransportError::Network("the server did not answer".into()))?;
    response.dyn_into().map_err(js)
}

/// Sends a request, reads the body, and turns error replies into [`TransportError::Api`].
pub async fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Reply, TransportError> {
    let response = send(method, url, token, body).await?;
    let buf = JsFuture::from(response.array_buffer().map_err(js)?)
        .await
        .map_err(|_| TransportError::Network("the connection dropped during the reply".into()))?;
    let body = Uint8Array::new(&buf).to_vec();
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(Reply {
            headers: response.headers(),
            body,
        });
    }
    Err(api_error(status, &body))
}

/// Decodes an error reply.
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

fn json<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, TransportError> {
    serde_json::from_slice(&reply.body)
        .map_err(|e| TransportError::Network(format!("an unexpected reply: {e}")))
}

/// The browser's transport: `fetch` with the bearer header.
pub struct FetchTransport;

impl Transport for FetchTransport {
    async fn push(&self, remote: &Remote, body: Vec<u8>) -> Result<PushReply, TransportError> {
        let reply = request(
            "POST",
            &remote.url("/updates"),
            Some(&remote.token),
            Some(("application/octet-stream", &body)),
        )
        .await?;
        json(&reply)
    }

    async fn pull(&self, remote: &Remote, after: u64) -> Result<Pulled, TransportError> {
        let reply = request(
            "GET",
            &remote.url(&format!("/updates?after={after}")),
            Some(&remote.token),
            None,
        )
        .await?;
        let more = reply.headers.get(HEADER_MORE).ok().flatten().is_some();
        Ok(Pulled {
            body: reply.body,
            more,
        })
    }

    async fn put_snapshot(
        &self,
        remote: &Remote,
        covers: u64,
        bytes: Vec<u8>,
    ) -> Result<(), TransportError> {
        request(
            "PUT",
            &remote.url(&format!("/snapshot?covers={covers}")),
            Some(&remote.token),
            Some(("application/octet-stream", &bytes)),
        )
        .await
        .map(|_| ())
    }

    async fn join(&self, remote: &Remote) -> Result<JoinInfo, TransportError> {
        json(&request("GET", &remote.url(""), Some(&remote.token), None).await?)
    }

    async fn create(
        &self,
        server_url: &str,
        ws: &str,
        secret: &str,
    ) -> Result<CreatedWorkspace, TransportError> {
        let body = serde_json::json!({ "workspace_id": ws, "creation_secret": secret }).to_string();
        let url = format!("{server_url}/v1/workspaces");
        json(
            &request(
                "POST",
                &url,
                None,
                Some(("application/json", body.as_bytes())),
            )
            .await?,
        )
    }

    async fn rotate(
        &self,
        remote: &Remote,
        rotation_id: &str,
    ) -> Result<MintedToken, TransportError> {
        let body = serde_json::json!({ "rotation_id": rotation_id }).to_string();
        json(
            &request(
                "POST",
                &remote.url("/tokens/rotate"),
                Some(&remote.token),
                Some(("application/json", body.as_bytes())),
            )
            .await?,
        )
    }

    async fn mint(
        &self,
        remote: &Remote,
        body: &MintTokenRequest,
    ) -> Result<MintedToken, TransportError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| TransportError::Network(format!("cannot encode the request: {e}")))?;
        json(
            &request(
                "POST",
                &remote.url("/tokens"),
                Some(&remote.token),
                Some(("application/json", &body)),
            )
            .await?,
        )
    }

    async fn list_tokens(&self, remote: &Remote) -> Result<TokenList, TransportError> {
        json(&request("GET", &remote.url("/tokens"), Some(&remote.token), None).await?)
    }

    async fn revoke(&self, remote: &Remote, token_id: &str) -> Result<(), TransportError> {
        request(
            "DELETE",
            &remote.url(&format!("/tokens/{token_id}")),
            Some(&remote.token),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn put_keys(&self, remote: &Remote, keys: &PutKeys) -> Result<(), TransportError> {
        let body = serde_json::to_vec(keys)
            .map_err(|e| TransportError::Network(format!("cannot encode the request: {e}")))?;
        request(
            "PUT",
            &remote.url("/keys"),
            Some(&remote.token),
            Some(("application/json", &body)),
        )
        .await
        .map(|_| ())
    }
}
