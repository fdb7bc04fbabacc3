//! `fetch` (wasm32 only; in a worker or a page): [`FetchTransport`], the browser's
//! [`super::Transport`] for the sync core ([`Http`] over `fetch`; the calls themselves are
//! [`super::http`]'s) — used by the sync worker and by the plain-JavaScript API alike — and the
//! requests the worker streams (the live channel). Error bodies become typed [`TransportError`]s.
//! Pushes go over the push socket ([`super::socket`]) while one is open.

pub use super::http::api_error;
use super::http::{Http, HttpReply};
use super::TransportError;
use js_sys::{Promise, Uint8Array};
use shared_schema::api::{HEADER_HEAD_SEQ, HEADER_MORE};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response, Window, WorkerGlobalScope};

thread_local! {
    /// Whether this thread's global is a page's `Window` (else a worker's scope). Asked once:
    /// in a worker, `instanceof Window` throws (`Window` is not defined there) and the binding
    /// catches it — an exception, with its stack trace, on every request and timer.
    static IN_PAGE: bool = js_sys::global().dyn_ref::<Window>().is_some();
}

/// `fetch(request)` in a page or a worker.
fn fetch(request: &Request) -> Promise {
    let global = js_sys::global();
    if IN_PAGE.with(|p| *p) {
        global.unchecked_ref::<Window>().fetch_with_request(request)
    } else {
        global
            .unchecked_ref::<WorkerGlobalScope>()
            .fetch_with_request(request)
    }
}

fn js(e: JsValue) -> TransportError {
    TransportError::Network(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Calls `callback` after `ms` milliseconds (`setTimeout` in a page or a worker).
pub(super) fn set_timeout(callback: &js_sys::Function, ms: i32) {
    let global = js_sys::global();
    let _ = if IN_PAGE.with(|p| *p) {
        global
            .unchecked_ref::<Window>()
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback, ms)
    } else {
        global
            .unchecked_ref::<WorkerGlobalScope>()
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback, ms)
    };
}

/// Sleeps `ms` milliseconds.
pub async fn sleep_ms(ms: u64) {
    let ms = ms.min(i32::MAX as u64) as i32;
    let p = Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
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

/// The browser's transport: `fetch` with the bearer header. The protocol's calls are
/// [`super::http`]'s, over [`Http`].
pub struct FetchTransport;

impl Http for FetchTransport {
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Result<HttpReply, TransportError> {
        if let (Some(t), Some((_, bytes)), "POST") = (token, body, method) {
            if let Some(reply) = super::socket::push(url, t, bytes).await {
                let (status, body) = reply?;
                return Ok(HttpReply {
                    status,
                    more: false,
                    head_seq: None,
                    body,
                });
            }
        }
        let response = send(method, url, token, body).await?;
        let buf = JsFuture::from(response.array_buffer().map_err(js)?)
            .await
            .map_err(|_| {
                TransportError::Network("the connection dropped during the reply".into())
            })?;
        Ok(HttpReply {
            status: response.status(),
            more: response.headers().get(HEADER_MORE).ok().flatten().is_some(),
            head_seq: response
                .headers()
                .get(HEADER_HEAD_SEQ)
                .ok()
                .flatten()
                .and_then(|h| h.parse().ok()),
            body: Uint8Array::new(&buf).to_vec(),
        })
    }
}
