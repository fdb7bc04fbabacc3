//! Storage health, which no comparable app shows: the browser is asked to keep Hearth's data
//! (persistent storage) once a notebook first syncs; usage and quota are shown, with a warning
//! before the quota is near; and a browser that dropped IndexedDB is noticed — a marker kept in
//! localStorage lists the notebooks this device had, so a page that finds them gone re-joins
//! every synced one from the server and says which (only on this device) could not come back.

use crate::api::Ui;
use client_wasm::storage::WorkspaceRecord;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// localStorage key of the marker: the notebooks this device holds.
const MARKER: &str = "hearth.notebooks";
/// localStorage key set once persistent storage was asked for.
const ASKED: &str = "hearth.persist-asked";
/// Share of the quota past which the user is warned.
const WARN_AT: f64 = 0.8;

/// What the marker keeps of one notebook: enough to name it and to join it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    /// Workspace id.
    pub id: String,
    /// Its name when last seen.
    pub name: String,
    /// The server it syncs with, if any.
    pub server_url: Option<String>,
    /// The token it syncs with, if any.
    pub token: Option<String>,
    /// Its keys (end-to-end encryption): without them a notebook brought back from the server
    /// could not be read. localStorage is this origin's, like IndexedDB: the server never sees it.
    #[serde(default)]
    pub keys: Option<shared_schema::seal::KeyRing>,
}

/// Where the peer ids this browser's engines edited under are kept (History's "this device").
const PEERS: &str = "hearth.peers";

/// Adds `current` (the open engine's peers) to the peers this browser has edited under and
/// returns them all (the newest 1,000).
pub fn own_peers(current: &[u64]) -> Vec<u64> {
    let Some(storage) = local_storage() else {
        return current.to_vec();
    };
    let mut all: Vec<u64> = storage
        .get_item(PEERS)
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let before = all.len();
    for p in current {
        if !all.contains(p) {
            all.push(*p);
        }
    }
    if all.len() != before {
        let keep = all.len().saturating_sub(1000);
        all.drain(..keep);
        let text: Vec<String> = all.iter().map(u64::to_string).collect();
        if let Ok(json) = serde_json::to_string(&text) {
            let _ = storage.set_item(PEERS, &json);
        }
    }
    all
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// Records which notebooks this device holds (after every listing of them).
pub fn remember(list: &[WorkspaceRecord]) {
    let kept: Vec<Kept> = list
        .iter()
        .map(|r| Kept {
            id: r.id.clone(),
            name: r.name.clone(),
            server_url: r.server_url.clone(),
            token: r.token.clone(),
            keys: r.keys.clone(),
        })
        .collect();
    if let (Some(ls), Ok(json)) = (local_storage(), serde_json::to_string(&kept)) {
        let _ = ls.set_item(MARKER, &json);
    }
}

/// Takes a notebook the user forgets off the marker.
pub fn forget(id: &str) {
    let Some(ls) = local_storage() else {
        return;
    };
    let kept: Vec<Kept> = ls
        .get_item(MARKER)
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let left: Vec<&Kept> = kept.iter().filter(|k| k.id != id).collect();
    if let Ok(json) = serde_json::to_string(&left) {
        let _ = ls.set_item(MARKER, &json);
    }
}

/// Notebooks the marker lists that storage no longer holds: the browser deleted them.
pub fn missing(stored: &[WorkspaceRecord]) -> Vec<Kept> {
    let Some(json) = local_storage().and_then(|ls| ls.get_item(MARKER).ok().flatten()) else {
        return Vec::new();
    };
    // A damaged marker is no evidence of anything.
    let kept: Vec<Kept> = serde_json::from_str(&json).unwrap_or_default();
    kept.into_iter()
        .filter(|k| !stored.iter().any(|r| r.id == k.id))
        .collect()
}

/// What to tell the user about notebooks the browser deleted, and which to join again (those
/// with a server and a token). Pure, so the wording is one place.
pub fn recovery_plan(lost: &[Kept]) -> (Option<String>, Vec<Kept>) {
    if lost.is_empty() {
        return (None, Vec::new());
    }
    let mut rejoin = Vec::new();
    let mut back = Vec::new();
    let mut gone = Vec::new();
    for k in lost {
        match (&k.server_url, &k.token) {
            (Some(_), Some(_)) => {
                rejoin.push(k.clone());
                back.push(format!("“{}”", k.name));
            }
            _ => gone.push(format!("“{}”", k.name)),
        }
    }
    let mut text = "This browser deleted Hearth's stored notebooks.".to_string();
    if !back.is_empty() {
        text.push_str(&format!(
            " Bringing back from the server: {}; edits made here that had not reached it are lost.",
            back.join(", ")
        ));
    }
    if !gone.is_empty() {
        text.push_str(&format!(
            " Lost, because they were only on this device: {}. Keep backups of notebooks that do not sync.",
            gone.join(", ")
        ));
    }
    (Some(text), rejoin)
}

fn storage_manager() -> Option<JsValue> {
    let navigator = web_sys::window()?.navigator();
    js_sys::Reflect::get(&navigator, &"storage".into())
        .ok()
        .filter(|s| !s.is_undefined())
}

async fn call(method: &str) -> Option<JsValue> {
    let manager = storage_manager()?;
    let f = js_sys::Reflect::get(&manager, &method.into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise = f.call0(&manager).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    JsFuture::from(promise).await.ok()
}

/// Asks the browser once (per site) to keep this site's storage, when a notebook first syncs.
pub async fn ask_persist_once(ui: Ui) {
    let Some(ls) = local_storage() else {
        return;
    };
    if ls.get_item(ASKED).ok().flatten().is_some() {
        return;
    }
    let _ = ls.set_item(ASKED, "1");
    let _ = call("persist").await;
    check(ui).await;
}

/// Reads usage, quota and persistence into `ui.storage`, and warns when the quota is near.
pub async fn check(ui: Ui) {
    let persisted = call("persisted").await.and_then(|v| v.as_bool());
    let Some(estimate) = call("estimate").await else {
        return;
    };
    let num = |key: &str| {
        js_sys::Reflect::get(&estimate, &key.into())
            .ok()
            .and_then(|v| v.as_f64())
    };
    let (Some(usage), Some(quota)) = (num("usage"), num("quota")) else {
        return;
    };
    ui.storage.set(Some(Usage {
        usage,
        quota,
        persisted: persisted.unwrap_or(false),
    }));
    if quota > 0.0 && usage / quota >= WARN_AT {
        ui.storage_warning.set(Some(format!(
            "Browser storage is nearly full: {} of {}. Download backups and forget notebooks you no longer need.",
            size(usage),
            size(quota)
        )));
    }
}

/// Usage and quota of this site's storage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Bytes used.
    pub usage: f64,
    /// Bytes the browser allows.
    pub quota: f64,
    /// The browser promised not to clear it under storage pressure.
    pub persisted: bool,
}

impl Usage {
    /// One line for the status details.
    pub fn words(&self) -> String {
        format!(
            "Storage: {} of {} used; {}",
            size(self.usage),
            size(self.quota),
            if self.persisted {
                "kept by the browser (persistent)"
            } else {
                "the browser may clear it when the disk is short"
            }
        )
    }
}

/// A byte count as a person reads it.
pub fn size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes.max(0.0);
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
