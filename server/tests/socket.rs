//! The push socket (`GET /v1/workspaces/{id}/socket`): a push over it is stored and answered
//! exactly as `POST …/updates`, and every hostile input gets the same refusals — a missing, bad,
//! read-only or revoked token, a malformed batch, an oversized body or frame, a text frame.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use shared_schema::api::PushReply;
use shared_schema::frame::{encode_push_batch, PushRecord};
use shared_schema::socket::{decode_reply, encode_request, offer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn socket_url(s: &TestServer, ws: &str) -> String {
    s.ws_url(ws, "/socket").replacen("http://", "ws://", 1)
}

/// Opens the socket of `ws` offering `protocols` (as a browser would send them).
async fn open_with(s: &TestServer, ws: &str, protocols: Option<&str>) -> Result<Socket, WsError> {
    let mut req = socket_url(s, ws).into_client_request()?;
    if let Some(p) = protocols {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(p).map_err(|e| WsError::HttpFormat(e.into()))?,
        );
    }
    Ok(connect_async(req).await?.0)
}

async fn open(s: &TestServer, ws: &str, token: &str) -> Result<Socket, WsError> {
    open_with(s, ws, Some(&offer(token).join(", "))).await
}

fn batch(key: &str, bytes: &[u8]) -> Result<Vec<u8>, E> {
    Ok(encode_push_batch(&[PushRecord {
        key: key.as_bytes().to_vec(),
        bytes: bytes.to_vec(),
    }])?)
}

/// Sends request `id` with `body` and reads its reply: (status, body).
async fn ask(socket: &mut Socket, id: u32, body: &[u8]) -> Result<(u16, Vec<u8>), E> {
    socket
        .send(Message::Binary(encode_request(id, body).into()))
        .await?;
    loop {
        match socket.next().await.ok_or("the socket closed")?? {
            Message::Binary(frame) => {
                let (got, status, body) = decode_reply(&frame)?;
                assert_eq!(got, id, "the reply names its request");
                return Ok((status, body.to_vec()));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
}

/// Reads until the server closes the socket; its close code.
async fn close_code(socket: &mut Socket) -> Result<Option<CloseCode>, E> {
    while let Some(msg) = socket.next().await {
        match msg {
            Ok(Message::Close(frame)) => return Ok(frame.map(|f| f.code)),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    Ok(None)
}

/// The HTTP status an upgrade was refused with.
fn refused_status(e: &WsError) -> Option<u16> {
    match e {
        WsError::Http(res) => Some(res.status().as_u16()),
        _ => None,
    }
}

fn error_code(body: &[u8]) -> Result<String, E> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    Ok(v["error"]["code"].as_str().ok_or("no code")?.to_owned())
}

#[actix_web::test]
async fn a_push_over_the_socket_is_stored_and_answered_as_over_http() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let mut socket = open(&s, id, t).await?;
    let (status, body) = ask(&mut socket, 1, &batch("k1", b"first")?).await?;
    assert_eq!(status, 200);
    let reply: PushReply = serde_json::from_slice(&body)?;
    assert_eq!((reply.seqs.clone(), reply.head_seq), (vec![1], 1));
    // The same batch again is a retry: the same seq, nothing new stored.
    let (status, body) = ask(&mut socket, 2, &batch("k1", b"first")?).await?;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<PushReply>(&body)?, reply);
    // HTTP and the socket write one log.
    assert_eq!(s.push(id, t, &[("k2", b"second")]).await?.status(), 200);
    let (_, body) = ask(&mut socket, 3, &batch("k3", b"third")?).await?;
    assert_eq!(serde_json::from_slice::<PushReply>(&body)?.seqs, vec![3]);
    let stored = s.pull_all(id, t).await?;
    let bytes: Vec<&[u8]> = stored.iter().map(|r| r.bytes.as_slice()).collect();
    assert_eq!(bytes, vec![&b"first"[..], b"second", b"third"]);
    assert_eq!(
        stored[2].chain,
        serde_json::from_slice::<PushReply>(&body)?.chain
    );
    Ok(())
}

#[actix_web::test]
async fn an_upgrade_without_a_valid_write_token_is_refused_before_a_socket_opens() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let cases = [
        (None, 401),
        (Some("hearth.v1".to_owned()), 401),
        (Some(offer("not-a-jwt").join(", ")), 401),
        // A token offered without the protocol name is not read.
        (Some(offer(t)[1].clone()), 401),
    ];
    for (protocols, status) in cases {
        let e = open_with(&s, id, protocols.as_deref())
            .await
            .err()
            .ok_or("the upgrade was accepted")?;
        assert_eq!(refused_status(&e), Some(status), "{protocols:?}: {e}");
    }
    // Another workspace's token.
    let other = s.create().await?;
    let e = open(&s, id, &other.master_token)
        .await
        .err()
        .ok_or("a foreign token was accepted")?;
    assert_eq!(refused_status(&e), Some(403), "{e}");
    // A read-only link may not push.
    let read = s.mint(id, t, "read", None).await?;
    let e = open(&s, id, read["token"].as_str().ok_or("token")?)
        .await
        .err()
        .ok_or("a read-only token was accepted")?;
    assert_eq!(refused_status(&e), Some(403), "{e}");
    Ok(())
}

#[actix_web::test]
async fn a_socket_closes_when_its_token_is_revoked_and_the_push_after_is_not_stored() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, m) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let write = s.mint(id, m, "write", None).await?;
    let w = write["token"].as_str().ok_or("token")?;
    let mut socket = open(&s, id, w).await?;
    assert_eq!(ask(&mut socket, 1, &batch("a", b"kept")?).await?.0, 200);
    let jti = write["id"].as_str().ok_or("id")?;
    let res = s
        .client
        .delete(s.ws_url(id, &format!("/tokens/{jti}")))
        .bearer_auth(m)
        .send()
        .await?;
    assert_eq!(res.status(), 204);
    // A push sent as the revocation lands is refused by the token check or meets the close.
    let _ = socket
        .send(Message::Binary(
            encode_request(2, &batch("b", b"late")?).into(),
        ))
        .await;
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(frame))) => {
                let (_, status, body) = decode_reply(&frame)?;
                assert_eq!((status, error_code(body)?.as_str()), (401, "token_revoked"));
            }
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Policy));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    let stored = s.pull_all(id, m).await?;
    assert_eq!(stored.len(), 1, "only the push before the revocation");
    assert!(
        open(&s, id, w).await.is_err(),
        "a revoked token cannot reopen it"
    );
    Ok(())
}

#[actix_web::test]
async fn malformed_and_oversized_pushes_get_the_http_errors_and_the_socket_stays_usable() -> R {
    let s = start_with(|c| c.max_update_bytes = 1024).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let mut socket = open(&s, id, t).await?;
    let (status, body) = ask(&mut socket, 1, b"not a batch").await?;
    assert_eq!(
        (status, error_code(&body)?.as_str()),
        (400, "malformed_frame")
    );
    let (status, body) = ask(&mut socket, 2, &batch("big", &[7u8; 2000])?).await?;
    assert_eq!(
        (status, error_code(&body)?.as_str()),
        (413, "payload_too_large")
    );
    let (status, _) = ask(&mut socket, 3, &batch("ok", b"fine")?).await?;
    assert_eq!(status, 200, "the socket still takes pushes");
    assert_eq!(
        s.pull_all(id, t).await?.len(),
        1,
        "only the good push was stored"
    );
    Ok(())
}

#[actix_web::test]
async fn frames_that_are_not_requests_close_the_socket_with_a_reason() -> R {
    let s = start_with(|c| c.max_update_bytes = 1024).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let cases: [(Message, CloseCode); 3] = [
        (Message::Binary(vec![0u8, 1].into()), CloseCode::Invalid),
        (Message::Text("hello".into()), CloseCode::Unsupported),
        (
            Message::Binary(vec![0u8; 1024 + 4 + 64 * 1024 + 1].into()),
            CloseCode::Size,
        ),
    ];
    for (msg, code) in cases {
        let mut socket = open(&s, id, t).await?;
        socket.send(msg).await?;
        assert_eq!(close_code(&mut socket).await?, Some(code));
    }
    assert!(s.pull_all(id, t).await?.is_empty(), "nothing was stored");
    Ok(())
}

#[actix_web::test]
async fn a_token_holds_a_capped_number_of_sockets() -> R {
    let s = start_with(|c| c.max_streams_per_token = 2).await?;
    let ws = s.create().await?;
    let (id, t) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let first = open(&s, id, t).await?;
    let _second = open(&s, id, t).await?;
    let e = open(&s, id, t).await.err().ok_or("a third socket opened")?;
    assert_eq!(refused_status(&e), Some(429), "{e}");
    drop(first);
    // The slot is freed once the server sees the first socket gone.
    let mut reopened = false;
    for _ in 0..50 {
        if open(&s, id, t).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reopened, "a closed socket gives its slot back");
    Ok(())
}
