//! Sync for plain JavaScript: register a notebook on a server, join one with a share link, run a
//! sync round, read the status, make share links — the same sync core and `fetch` transport the
//! app's worker runs ([`crate::sync::SyncCore`], [`crate::sync::fetch::FetchTransport`]).
//! A failed call rejects with an `Error` whose `code` says what happened: a stop reason
//! (`token_revoked`, `token_expired`, `chain_mismatch`, …), `unreachable` (retry later),
//! `local_only`, `bad_link`, or `error`.
//!
//! ```js
//! const ws = await HearthEngine.join("hearth", "https://host/#/join/…?t=…");
//! await ws.spliceText(id, "body", 0, 0, "hi");
//! await ws.syncOnce();                       // → { pushed, pulled, seq }
//! JSON.parse(await ws.statusJson());          // → { server, role, pending, lastPulledSeq, … }
//! ```

use super::{js_err, json, HearthEngine};
use crate::engine::Engine;
use crate::storage::{IdbStore, Store};
use crate::sync::fetch::FetchTransport;
use crate::sync::{SyncCore, SyncError, TransportError};
use js_sys::Promise;
use shared_schema::api::MintTokenRequest;
use shared_schema::{link, Role};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// A JS `Error` with a `code` property.
fn coded(message: &str, code: &str) -> JsValue {
    let err: JsValue = JsError::new(message).into();
    let _ = js_sys::Reflect::set(&err, &"code".into(), &code.into());
    err
}

fn sync_err(e: SyncError) -> JsValue {
    let code = match (&e, e.stop_reason()) {
        (_, Some(reason)) => reason.as_str(),
        (SyncError::Transport(TransportError::Network(_)), None) => "unreachable",
        (SyncError::Transport(_), None) => "unreachable",
        (SyncError::LocalOnly, None) => "local_only",
        (SyncError::BadLink(_), None) => "bad_link",
        _ => "error",
    };
    coded(&e.to_string(), code)
}

/// One round for `engine`'s workspace, then the engine reads what was stored.
async fn round(engine: &Engine<IdbStore>) -> Result<crate::sync::Round, JsValue> {
    let core = SyncCore::new(engine.store().clone(), FetchTransport);
    let round = core
        .sync_once(&engine.id(), &|_, _| {})
        .await
        .map_err(sync_err)?;
    engine.refresh().await.map_err(js_err)?;
    Ok(round)
}

#[wasm_bindgen]
impl HearthEngine {
    /// Joins a notebook with a share link: stores it in database `db_name` only once the server
    /// accepted the token, pulls it, and opens it.
    pub async fn join(db_name: String, share_link: String) -> Result<HearthEngine, JsValue> {
        let l = link::parse(&share_link).map_err(|e| coded(&e.to_string(), "bad_link"))?;
        let store = IdbStore::open(&db_name).await.map_err(js_err)?;
        crate::sync::join(
            &store,
            &FetchTransport,
            &l.server_url,
            &l.workspace,
            &l.token,
            l.key.as_deref(),
        )
        .await
        .map_err(sync_err)?;
        let engine = Engine::open(store, &l.workspace).await.map_err(js_err)?;
        round(&engine).await?;
        Ok(Self {
            inner: Rc::new(engine),
        })
    }

    /// Registers this notebook on the server at `server_url` (this device becomes its owner) and
    /// runs a first round.
    pub fn connect(&self, server_url: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            crate::sync::connect(inner.store(), &FetchTransport, &server_url, &inner.id())
                .await
                .map_err(sync_err)?;
            inner.refresh().await.map_err(js_err)?;
            round(&inner).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// One sync round: push what is pending, pull what is new. Resolves to
    /// `{ pushed, pulled, seq }`.
    #[wasm_bindgen(js_name = syncOnce)]
    pub fn sync_once(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let r = round(&inner).await?;
            let out = serde_json::json!({ "pushed": r.pushed, "pulled": r.pulled, "seq": r.seq });
            js_sys::JSON::parse(&json(&out)?)
        })
    }

    /// Where this notebook stands, as JSON: `{ server, role, pending, lastPulledSeq,
    /// quarantined }` (`server` is null for a notebook on this device only).
    #[wasm_bindgen(js_name = statusJson)]
    pub fn status_json(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let record = inner.record();
            let pending = inner.store().pending(&inner.id()).await.map_err(js_err)?;
            let out = serde_json::json!({
                "server": record.server_url,
                "role": record.role,
                "pending": pending.len(),
                "lastPulledSeq": record.last_pulled_seq,
                "quarantined": inner.quarantined(),
            });
            Ok(json(&out)?.into())
        })
    }

    /// Makes a share link (owner only): `role` is "write" or "read", `expires_in` seconds (0:
    /// never), `label` what the owner will recognise it by. Resolves to the link.
    #[wasm_bindgen(js_name = shareLink)]
    pub fn share_link(&self, role: String, expires_in: f64, label: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let role = match role.as_str() {
                "write" => Role::Write,
                "read" => Role::Read,
                other => {
                    return Err(coded(
                        &format!("unknown role {other:?}: use \"write\" or \"read\""),
                        "error",
                    ))
                }
            };
            let record = inner.record();
            let Some(server) = record.server_url else {
                return Err(sync_err(SyncError::LocalOnly));
            };
            let body = MintTokenRequest {
                role,
                expires_in: (expires_in >= 1.0).then_some(expires_in as u64),
                label,
            };
            let shared =
                crate::sync::keys::share(inner.store(), &FetchTransport, &record.id, &body)
                    .await
                    .map_err(sync_err)?;
            let key = shared.key.map(|k| k.to_text());
            Ok(link::format(&server, &record.id, &shared.minted.token, key.as_deref()).into())
        })
    }
}
