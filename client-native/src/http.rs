//! [`ReqwestHttp`]: the native client's [`Http`] — one request and its whole reply over
//! `reqwest`. The protocol's calls are `client_wasm::sync::http`'s, the same the browser's
//! `fetch` transport makes, so every `ReqwestHttp` is a sync-core `Transport`.
//!
//! `https://` servers are reached over rustls with the Web PKI's roots (Mozilla's list, built
//! in: no system library), plus any roots passed to [`ReqwestHttp::with_roots`] (a company CA,
//! a self-hosted box's own certificate).

use client_wasm::sync::http::{Http, HttpReply};
use client_wasm::sync::TransportError;
use shared_schema::api::{HEADER_HEAD_SEQ, HEADER_MORE};

/// HTTP over `reqwest`: `http://`, and `https://` over rustls.
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// A client trusting the built-in Web PKI roots.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client that also trusts the certificates in `pem` (one or more PEM blocks).
    pub fn with_roots(pem: &[u8]) -> Result<Self, TransportError> {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| network(format!("not a PEM certificate: {e}")))?;
        if roots.is_empty() {
            return Err(network("no certificate in the PEM file"));
        }
        let client = roots
            .into_iter()
            .fold(reqwest::Client::builder(), |b, c| b.add_root_certificate(c))
            .build()
            .map_err(network)?;
        Ok(Self { client })
    }

    /// The underlying client (the live channel's long request uses it too).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// A transport error with the whole cause chain (reqwest's top message alone hides a TLS or
/// certificate failure behind "error sending request").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn network(e: impl std::fmt::Display) -> TransportError {
    TransportError::Network(e.to_string())
}

impl Http for ReqwestHttp {
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Result<HttpReply, TransportError> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(network)?;
        let mut request = self.client.request(method, url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes.to_vec());
        }
        let response = request.send().await.map_err(|e| network(chain(&e)))?;
        let status = response.status().as_u16();
        let more = response.headers().contains_key(HEADER_MORE);
        let head_seq = response
            .headers()
            .get(HEADER_HEAD_SEQ)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| network(format!("the connection dropped during the reply: {e}")))?;
        Ok(HttpReply {
            status,
            more,
            head_seq,
            body: body.to_vec(),
        })
    }
}
