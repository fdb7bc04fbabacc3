//! The push socket (`docs/protocol.md`, "Push socket"): `GET /v1/workspaces/{id}/socket` as a
//! WebSocket that carries pushes — the same bodies and replies as `POST …/updates`, without a new
//! HTTP request per push (in Chromium a `fetch` from a worker spends 2–4 ms before its request
//! leaves; a message on an open socket under 1 ms).
//!
//! A browser cannot set an `Authorization` header on a WebSocket, so the token rides in the
//! `Sec-WebSocket-Protocol` offer, next to the protocol name: `hearth.v1, hearth.bearer.<JWT>`
//! (a JWT's characters are all valid there), and the server answers `hearth.v1`. The token is
//! checked before the upgrade and again for every push.
//!
//! Frames are binary. A request is `id (u32, big-endian) ‖ push batch`; its reply
//! `id (u32) ‖ HTTP status (u16) ‖ body` — the body `POST …/updates` would have answered with that
//! status (a [`crate::api::PushReply`], or an [`crate::ErrorBody`]). A reply comes only after the
//! push is durable, exactly as over HTTP; a socket that closes before the reply leaves the push's
//! fate unknown, like a cut HTTP request, and the client retries it (pushes are idempotent).

use thiserror::Error;

/// The subprotocol a client offers and the server accepts.
pub const PROTOCOL: &str = "hearth.v1";

/// Prefix of the subprotocol offer that carries the bearer token.
pub const BEARER_PREFIX: &str = "hearth.bearer.";

/// Largest push body a client sends over the socket; larger batches go over `POST …/updates`.
pub const SOCKET_MAX: usize = 256 * 1024;

const ID: usize = 4;
const STATUS: usize = 2;

/// A frame that is not a request or a reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SocketError {
    /// Too short to hold its header.
    #[error("a push socket frame of {len} bytes is shorter than its {need}-byte header")]
    Short {
        /// Bytes received.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
}

/// The subprotocol offer for `token`: `[PROTOCOL, "hearth.bearer.<token>"]`.
pub fn offer(token: &str) -> [String; 2] {
    [PROTOCOL.to_owned(), format!("{BEARER_PREFIX}{token}")]
}

/// The bearer token in a `Sec-WebSocket-Protocol` header, when it also offers [`PROTOCOL`].
pub fn token_in_offer(header: &str) -> Option<&str> {
    let mut protocol = false;
    let mut token = None;
    for item in header.split(',').map(str::trim) {
        if item == PROTOCOL {
            protocol = true;
        } else if let Some(t) = item.strip_prefix(BEARER_PREFIX) {
            token = Some(t).filter(|t| !t.is_empty());
        }
    }
    token.filter(|_| protocol)
}

/// The socket URL for a push URL: `http(s)://…/v1/workspaces/{id}/updates` (no query) →
/// `ws(s)://…/v1/workspaces/{id}/socket`; `None` for any other URL.
pub fn url_for_push(push_url: &str) -> Option<String> {
    let base = push_url.strip_suffix("/updates")?;
    if base.contains('?') || !base.contains("/v1/workspaces/") {
        return None;
    }
    let base = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://")?),
    };
    Some(format!("{base}/socket"))
}

/// A request frame: `id ‖ body`.
pub fn encode_request(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ID + body.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a request frame into its id and push body.
pub fn decode_request(frame: &[u8]) -> Result<(u32, &[u8]), SocketError> {
    let (id, body) = split::<ID>(frame)?;
    Ok((u32::from_be_bytes(id), body))
}

/// A reply frame: `id ‖ status ‖ body`.
pub fn encode_reply(id: u32, status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ID + STATUS + body.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits a reply frame into its id, status and body.
pub fn decode_reply(frame: &[u8]) -> Result<(u32, u16, &[u8]), SocketError> {
    let (id, rest) = split::<ID>(frame)?;
    let (status, body) = split::<STATUS>(rest).map_err(|_| SocketError::Short {
        len: frame.len(),
        need: ID + STATUS,
    })?;
    Ok((u32::from_be_bytes(id), u16::from_be_bytes(status), body))
}

fn split<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), SocketError> {
    let short = SocketError::Short {
        len: bytes.len(),
        need: N,
    };
    let (head, rest) = bytes.split_at_checked(N).ok_or(short.clone())?;
    Ok((head.try_into().map_err(|_| short)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_comes_back_as_its_id_and_body() -> Result<(), SocketError> {
        let frame = encode_request(7, b"batch");
        assert_eq!(decode_request(&frame)?, (7, &b"batch"[..]));
        assert_eq!(
            decode_request(&encode_request(u32::MAX, b""))?,
            (u32::MAX, &b""[..])
        );
        Ok(())
    }

    #[test]
    fn a_reply_comes_back_as_its_id_status_and_body() -> Result<(), SocketError> {
        let frame = encode_reply(9, 409, b"{\"error\":{}}");
        assert_eq!(decode_reply(&frame)?, (9, 409, &b"{\"error\":{}}"[..]));
        Ok(())
    }

    #[test]
    fn frames_shorter_than_their_header_are_refused() {
        assert_eq!(
            decode_request(&[0, 1]),
            Err(SocketError::Short { len: 2, need: 4 })
        );
        assert_eq!(
            decode_reply(&[0, 0, 0, 1, 2]),
            Err(SocketError::Short { len: 5, need: 6 })
        );
    }

    #[test]
    fn a_push_url_maps_to_its_workspace_socket() {
        assert_eq!(
            url_for_push("http://h:1/v1/workspaces/w/updates").as_deref(),
            Some("ws://h:1/v1/workspaces/w/socket")
        );
        assert_eq!(
            url_for_push("https://h/v1/workspaces/w/updates").as_deref(),
            Some("wss://h/v1/workspaces/w/socket")
        );
        assert_eq!(
            url_for_push("http://h/v1/workspaces/w/updates?after=1"),
            None
        );
        assert_eq!(url_for_push("http://h/v1/workspaces/w/snapshot"), None);
        assert_eq!(url_for_push("ftp://h/v1/workspaces/w/updates"), None);
    }

    #[test]
    fn the_token_is_read_only_from_an_offer_that_names_the_protocol() {
        let [p, t] = offer("a.b-c_d");
        assert_eq!(token_in_offer(&format!("{p}, {t}")), Some("a.b-c_d"));
        assert_eq!(token_in_offer(&format!("{t},{p}")), Some("a.b-c_d"));
        assert_eq!(token_in_offer(&t), None, "no protocol name");
        assert_eq!(token_in_offer(&format!("{p}, hearth.bearer.")), None);
        assert_eq!(token_in_offer("chat, superchat"), None);
    }
}
