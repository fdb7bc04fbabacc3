//! `fetch` from the worker: JSON and octet-stream requests with the bearer token, error bodies
//! decoded into [`SyncError`]s, and sleeping.

use crate::SyncError;
use js_sys::{Promise, Uint8Array};
use shared_schema::{ErrorBody, ErrorCode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response, WorkerGlobalScope};

/// The worker's global scope.
pub fn global() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn js(e: JsValue) -> SyncError {
    SyncError::Network(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Sleeps `ms` milliseconds.
pub async fn sleep_ms(ms: u64) {
    let p = Promise::new(&mut |resolve, _| {
        let _ = global().set_timeout_with_callback_and_timeout_and_arguments_0(
            &resolve,
            ms.min(i32::MAX as u64) as i32,
        );
    });
    let _ = JsFuture::from(p).await;
}

/// A successful reply.
pub struct Reply {
    /// Status.
    pub status: u16,
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
) -> Result<Response, SyncError> {
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
    let response = JsFuture::from(global().fetch_with_request(&request))
        .await
        .map_err(|_| SyncError::Network(format!("cannot reach {url}")))?;
    response.dyn_into().map_err(js)
}

/// Sends a request, reads the body, and turns error replies into [`SyncError::Api`].
pub async fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Reply, SyncError> {
    let response = send(method, url, token, body).await?;
    let buf = JsFuture::from(response.array_buffer().map_err(js)?)
        .await
        .map_err(|_| SyncError::Network("the connection dropped during the reply".into()))?;
    let body = Uint8Array::new(&buf).to_vec();
    let status = response.status();
    if (200..300).contains(&status) {
        return Ok(Reply {
            status,
            headers: response.headers(),
            body,
        });
    }
    Err(api_error(status, &body))
}

/// Decodes an error reply.
pub fn api_error(status: u16, body: &[u8]) -> SyncError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => SyncError::Api {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => SyncError::Api {
            status,
            code: if status >= 500 {
                ErrorCode::StorageUnavailable
            } else {
                ErrorCode::BadRequest
            },
            message: format!("the server answered {status}"),
        },
    }
}
