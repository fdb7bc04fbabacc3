//! The native client against a real `hearth-server` (SQLite, bound to 127.0.0.1:0): two devices on
//! SQLite files sync an encrypted notebook over HTTP with the protocol calls the browser makes,
//! and a revoked link stops with the same reason as in the browser.

use client_native::{ReqwestHttp, SqliteStore};
use client_wasm::storage::Store;
use client_wasm::sync::SyncCore;
use client_wasm::Engine;
use shared_schema::sync::StopReason;

type R = Result<(), Box<dyn std::error::Error>>;

async fn server() -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("hearth-native-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let running = hearth_server::app::start(hearth_server::Config::for_tests(dir, None)).await?;
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);
    Ok(url)
}

#[actix_web::test]
async fn two_native_devices_sync_an_encrypted_notebook_through_a_real_server() -> R {
    let url = server().await?;
    let http = ReqwestHttp::new();
    let owner = SqliteStore::in_memory()?;
    let engine = Engine::create(owner.clone(), "Native").await?;
    let ws = engine.id();
    client_wasm::sync::connect(&owner, &http, &url, &ws).await?;
    engine.refresh().await?;
    engine.create_note("typed in a terminal").await?;
    let core = SyncCore::new(owner.clone(), http.clone());
    core.sync_once(&ws, &|_, _| {}).await?;
    assert!(owner.pending(&ws).await?.is_empty());

    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Write,
        expires_in: None,
        label: "second device".into(),
    };
    let shared = client_wasm::sync::keys::share(&owner, &http, &ws, &request).await?;
    let key = shared.key.map(|k| k.to_text());
    let member = SqliteStore::in_memory()?;
    client_wasm::sync::join(
        &member,
        &http,
        &url,
        &ws,
        &shared.minted.token,
        key.as_deref(),
    )
    .await?;
    // The pull reports its progress against the server's head (a progress bar's figures).
    let pages = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = pages.clone();
    let member_core = SyncCore::new(member.clone(), http.clone())
        .on_pull_page(move |seq, records, head| seen.borrow_mut().push((seq, records, head)));
    let round = member_core.sync_once(&ws, &|_, _| {}).await?;
    let last = pages.borrow().last().copied().ok_or("no page reported")?;
    assert_eq!(
        last,
        (round.seq, round.pulled, Some(round.seq)),
        "{:?}",
        pages.borrow()
    );
    let member_engine = Engine::open(member.clone(), &ws).await?;
    assert_eq!(member_engine.notes(), engine.notes());
    member_engine
        .create_note("typed on the second device")
        .await?;
    member_core.sync_once(&ws, &|_, _| {}).await?;
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    assert_eq!(member_engine.notes(), engine.notes());
    assert_eq!(engine.notes().len(), 2);

    // What the server stores is sealed: read it raw with the owner's token.
    let token = owner
        .get_workspace(&ws)
        .await?
        .and_then(|r| r.token)
        .ok_or("token")?;
    let raw = reqwest::Client::new()
        .get(format!("{url}/v1/workspaces/{ws}/updates?after=0"))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let records = shared_schema::frame::decode_pull_stream(&raw)?;
    assert!(!records.is_empty());
    assert!(records
        .iter()
        .all(|r| shared_schema::seal::is_sealed(&r.bytes)));

    // Revoked: the member's next round stops with the browser's reason; its data stays.
    client_wasm::sync::keys::revoke(&owner, &http, &ws, &shared.minted.id).await?;
    let stopped = member_core.sync_once(&ws, &|_, _| {}).await;
    assert!(
        matches!(&stopped, Err(e) if e.stop_reason() == Some(StopReason::TokenRevoked)),
        "{stopped:?}"
    );
    assert_eq!(Engine::open(member, &ws).await?.notes().len(), 2);
    Ok(())
}
