//! Presence: who has a workspace open, carried on the live channel, never stored.

mod common;

use common::*;
use shared_schema::api::{PresenceEvent, PRESENCE_MAX, PRESENCE_TTL_SECS};
use shared_schema::Role;

async fn beat(
    s: &TestServer,
    ws: &str,
    token: &str,
    body: serde_json::Value,
) -> Result<reqwest::Response, E> {
    Ok(s.client
        .put(s.ws_url(ws, "/presence"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?)
}

#[actix_web::test]
async fn a_reader_shows_as_present_in_its_note_on_the_owners_live_stream_and_is_gone_after_the_ttl(
) -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let (id, owner) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    let reader = s.mint(id, owner, "read", None).await?["token"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    let live = s
        .client
        .get(s.ws_url(id, "/live"))
        .bearer_auth(owner)
        .send()
        .await?;
    assert_eq!(live.status(), 200);
    let mut stream = live.bytes_stream();
    let mut text = String::new();
    let res = beat(
        &s,
        id,
        &reader,
        serde_json::json!({"device": "tab-r", "note": "n1"}),
    )
    .await?;
    assert_eq!(res.status(), 204);
    let seen: PresenceEvent = next_data(&mut stream, &mut text, |e: &PresenceEvent| {
        !e.presence.is_empty()
    })
    .await?;
    assert_eq!(seen.presence.len(), 1);
    assert_eq!(seen.presence[0].device, "tab-r");
    assert_eq!(seen.presence[0].role, Role::Read);
    assert_eq!(seen.presence[0].note.as_deref(), Some("n1"));
    // Moving to another note is announced.
    beat(
        &s,
        id,
        &reader,
        serde_json::json!({"device": "tab-r", "note": "n2"}),
    )
    .await?;
    let moved: PresenceEvent = next_data(&mut stream, &mut text, |e: &PresenceEvent| {
        e.presence.first().and_then(|p| p.note.as_deref()) == Some("n2")
    })
    .await?;
    assert_eq!(moved.presence.len(), 1);
    // A new stream hears who is present at once.
    let late = s
        .client
        .get(s.ws_url(id, "/live"))
        .bearer_auth(owner)
        .send()
        .await?;
    let mut late_stream = late.bytes_stream();
    let mut late_text = String::new();
    let now: PresenceEvent =
        next_data(&mut late_stream, &mut late_text, |_: &PresenceEvent| true).await?;
    assert_eq!(now.presence, moved.presence);
    // No more heartbeats: gone within the time to live (+ the 1 s sweep).
    let started = std::time::Instant::now();
    let gone: PresenceEvent = next_data(&mut stream, &mut text, |e: &PresenceEvent| {
        e.presence.is_empty()
    })
    .await?;
    assert!(gone.presence.is_empty());
    assert!(started.elapsed().as_secs() <= PRESENCE_TTL_SECS + 2);
    Ok(())
}

#[actix_web::test]
async fn presence_refuses_bad_bodies_foreign_tokens_and_devices_past_the_cap() -> R {
    let s = start().await?;
    let ws = s.create().await?;
    let other = s.create().await?;
    let (id, owner) = (ws.workspace_id.as_str(), ws.master_token.as_str());
    for body in [
        serde_json::json!({"device": ""}),
        serde_json::json!({"device": "has space"}),
        serde_json::json!({"device": "x".repeat(41)}),
        serde_json::json!({"device": "ok", "note": "n".repeat(65)}),
        serde_json::json!({"nodevice": 1}),
    ] {
        expect_error(beat(&s, id, owner, body).await?, 400, "bad_request").await?;
    }
    let res = beat(
        &s,
        id,
        &other.master_token,
        serde_json::json!({"device": "d"}),
    )
    .await?;
    assert_eq!(res.status(), 403, "a token of another workspace");
    let res = s
        .client
        .put(s.ws_url(id, "/presence"))
        .json(&serde_json::json!({"device": "d"}))
        .send()
        .await?;
    expect_error(res, 401, "missing_token").await?;
    for i in 0..PRESENCE_MAX {
        let res = beat(
            &s,
            id,
            owner,
            serde_json::json!({"device": format!("d{i}")}),
        )
        .await?;
        assert_eq!(res.status(), 204);
    }
    // Heartbeats are applied by a task: wait until the list is full.
    let mut full = false;
    for _ in 0..50 {
        let res = beat(&s, id, owner, serde_json::json!({"device": "one-too-many"})).await?;
        if res.status() == 429 {
            full = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(full, "the {}th device is refused", PRESENCE_MAX + 1);
    let res = beat(
        &s,
        id,
        owner,
        serde_json::json!({"device": "d0", "note": "still here"}),
    )
    .await?;
    assert_eq!(res.status(), 204, "a present device keeps beating");
    Ok(())
}
