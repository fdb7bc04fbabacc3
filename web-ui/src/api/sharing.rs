//! Sharing and the server: connecting a notebook, links (mint, list, revoke), the owner token,
//! end-to-end encryption and deleting the server's copy — each a request to the worker.

use super::*;

pub(super) fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Registers the open workspace on this server and starts syncing it.
pub fn connect(ui: Ui) {
    set_status(ui, &SyncStatus::Connecting { reason: None });
    send(WorkerRequest::Connect {
        ws: ui.ws.get_untracked(),
        server_url: origin(),
    });
}

/// Asks for the list of share links (tokens).
pub fn list_tokens(ui: Ui) {
    send(WorkerRequest::ListTokens {
        ws: ui.ws.get_untracked(),
    });
}

/// Revokes a share link.
pub fn revoke(ui: Ui, token_id: String) {
    send(WorkerRequest::Revoke {
        ws: ui.ws.get_untracked(),
        token_id,
    });
}

/// Deletes the open workspace on the server (master), then forgets it here.
pub fn delete_remote(ui: Ui) {
    send(WorkerRequest::DeleteRemote {
        ws: ui.ws.get_untracked(),
    });
}

/// Mints a share link with a role, lifetime and label.
pub fn mint(ui: Ui, role: Role, expires_in: Option<u64>, label: String) {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    ui.share_info
        .set(Some((role, expires_in.map(|s| now.saturating_add(s)))));
    send(WorkerRequest::Mint {
        ws: ui.ws.get_untracked(),
        role,
        expires_in,
        label,
    });
}

/// Rotates the master token.
pub fn rotate(ui: Ui) {
    send(WorkerRequest::Rotate {
        ws: ui.ws.get_untracked(),
    });
}

/// Turns end-to-end encryption on for the open notebook (owner; one-way).
pub fn encrypt(ui: Ui) {
    ui.notice.set(Some("Encrypting this notebook…".into()));
    send(WorkerRequest::Encrypt {
        ws: ui.ws.get_untracked(),
    });
}

/// Re-reads the open notebook's record (its keys changed: a rotation, encryption turned on) and,
/// where this device is the owner, compacts: the snapshot it uploads is sealed under the newest
/// key.
pub(super) fn keys_changed(ui: Ui, compact: bool) {
    if let Some(e) = engine() {
        leptos::task::spawn_local(async move {
            if e.refresh().await.is_ok() && compact {
                let _ = e.compact().await;
            }
            refresh_workspaces(ui).await;
        });
    }
}
