//! [`ReqwestHttp`]: the native client's [`Http`] — one request and its whole reply over
//! `reqwest`. The protocol's calls are `client_wasm::sync::http`'s, the same the browser's
//! `fetch` transport makes, so every `ReqwestHttp` is a sync-core `Transport`.

use client_wasm::sync::http::{Http, HttpReply};
use client_wasm::sync::TransportError;
use shared_schema::api::HEADER_MORE;

/// HTTP over `reqwest` (plain `http://` URLs).
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// A client with `reqwest`'s defaults.
    pub fn new() -> Self {
        Self::default()
    }
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
        let response = request.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let more = response.headers().contains_key(HEADER_MORE);
        let body = response
            .bytes()
            .await
            .map_err(|e| network(format!("the connection dropped during the reply: {e}")))?;
        Ok(HttpReply {
            status,
            more,
            body: body.to_vec(),
        })
    }
}
