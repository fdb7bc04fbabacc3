//! Sharing (owner): register the notebook on the server, then one Share dialog — make an edit or
//! read-only link with an expiry in hours or days and a label, copy it or scan its QR code, see
//! every link with its state (active, expired, revoked) and revoke, rotate the owner token.

use crate::api::{self, Ui};
use leptos::html::Dialog;
use leptos::prelude::*;
use shared_schema::api::TokenInfo;
use shared_schema::Role;

/// Above the notes: "Sync with this server" until the notebook syncs, then "Share…" (owner), or
/// the read-only badge (a member who can only read).
#[component]
pub fn SharingBar(ui: Ui) -> impl IntoView {
    let dialog = NodeRef::<Dialog>::new();
    let open = move |_| {
        ui.share_link.set(None);
        api::list_tokens(ui);
        if let Some(d) = dialog.get() {
            let _ = d.show_modal();
        }
    };
    view! {
        <section class="sharing" aria-label="Sharing">
            <Show when=move || !ui.synced.get() && ui.master.get()>
                <button class="primary" data-testid="connect" on:click=move |_| api::connect(ui)>"Sync with this server"</button>
                <span class="hint">"Keeps a backup on the server and lets you share this notebook."</span>
            </Show>
            <Show when=move || ui.synced.get() && ui.master.get()>
                <button class="primary" data-testid="share" on:click=open>"Share…"</button>
                <ShareDialog ui=ui dialog=dialog />
            </Show>
            <Show when=move || ui.read_only.get()>
                <p class="badge" data-testid="read-only">"Read-only: shared with you to read"</p>
            </Show>
        </section>
    }
}

/// How long a new link lasts.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Hours,
    Days,
    Never,
}

#[component]
fn ShareDialog(ui: Ui, dialog: NodeRef<Dialog>) -> impl IntoView {
    let role = RwSignal::new(Role::Write);
    let amount = RwSignal::new(7u64);
    let unit = RwSignal::new(Unit::Days);
    let label = RwSignal::new(String::new());
    let expires_in = move || match unit.get_untracked() {
        Unit::Never => None,
        Unit::Hours => Some(amount.get_untracked().max(1) * 3600),
        Unit::Days => Some(amount.get_untracked().max(1) * 24 * 3600),
    };
    let make = move |r: Role| {
        let text = label.get_untracked();
        let text = if text.trim().is_empty() {
            match r {
                Role::Read => "read-only link".to_string(),
                _ => "edit link".to_string(),
            }
        } else {
            text
        };
        api::mint(ui, r, expires_in(), text);
    };
    let close = move |_| {
        if let Some(d) = dialog.get() {
            d.close();
        }
    };
    view! {
        <dialog class="share-dialog" node_ref=dialog data-testid="share-dialog" aria-labelledby="share-title">
            <header>
                <h2 id="share-title">"Share this notebook"</h2>
                <button class="link close" data-testid="share-close" aria-label="Close" on:click=close>"×"</button>
            </header>
            <p class="hint">"Anyone who opens a link gets the access it was made with, until it expires or you revoke it."</p>
            <div class="quick">
                <button class="primary" data-testid="share-write" on:click=move |_| make(Role::Write)>"Link that can edit"</button>
                <button data-testid="share-read" on:click=move |_| make(Role::Read)>"Link that can only read"</button>
            </div>
            <fieldset class="options">
                <legend>"Options"</legend>
                <label>"Access "
                    <select data-testid="share-role" on:change=move |ev| role.set(if event_target_value(&ev) == "read" { Role::Read } else { Role::Write })>
                        <option value="write">"can edit"</option>
                        <option value="read">"can only read"</option>
                    </select>
                </label>
                <label>"Expires after "
                    <input type="number" min="1" max="87600" data-testid="share-amount" prop:value=move || amount.get().to_string()
                        prop:disabled=move || unit.get() == Unit::Never
                        on:input=move |ev| amount.set(event_target_value(&ev).parse().unwrap_or(1)) />
                    <select data-testid="share-unit" on:change=move |ev| unit.set(match event_target_value(&ev).as_str() {
                        "hours" => Unit::Hours,
                        "never" => Unit::Never,
                        _ => Unit::Days,
                    })>
                        <option value="days" selected>"days"</option>
                        <option value="hours">"hours"</option>
                        <option value="never">"never expires"</option>
                    </select>
                </label>
                <label>"Label " <input data-testid="share-label" placeholder="Ann's phone" prop:value=move || label.get()
                    on:input=move |ev| label.set(event_target_value(&ev)) /></label>
                <button data-testid="share-custom" on:click=move |_| make(role.get_untracked())>"Create link"</button>
            </fieldset>
            <Show when=move || ui.share_link.get().is_some()>
                <div class="share-result" data-testid="share-result">
                    <p data-testid="share-says">{move || ui.share_info.get().map(|(r, expires)| link_words(r, expires))}</p>
                    <input readonly data-testid="share-link" aria-label="Share link" prop:value=move || ui.share_link.get().unwrap_or_default() />
                    <button data-testid="copy-link" on:click=move |_| {
                        api::copy(&ui.share_link.get_untracked().unwrap_or_default());
                        ui.notice.set(Some("Link copied.".into()));
                    }>"Copy"</button>
                    <div class="qr" data-testid="qr" aria-label="QR code of the share link"
                        inner_html=move || ui.share_link.get().and_then(|l| api::qr_svg(&l)).unwrap_or_default()></div>
                </div>
            </Show>
            <h3>"Links"</h3>
            <Show when=move || ui.tokens.get().iter().any(|t| t.role != Role::Master)
                fallback=|| view! { <p class="empty">"No links yet."</p> }>
                <table class="links" data-testid="links">
                    <thead><tr><th>"Label"</th><th>"Access"</th><th>"Expires"</th><th>"State"</th><th></th></tr></thead>
                    <tbody>
                        <For each=move || ui.tokens.get().into_iter().filter(|t| t.role != Role::Master)
                            key=|t| (t.id.clone(), t.revoked_at) let:t>
                            <LinkRow ui=ui t=t />
                        </For>
                    </tbody>
                </table>
            </Show>
            <Show when=move || plain(ui)
                fallback=|| view! { <p class="hint" data-testid="encrypted-badge">"End-to-end encrypted: the server stores only ciphertext; each link carries its key."</p> }>
                <details class="encrypt" data-testid="encrypt-section" open>
                    <summary>"End-to-end encryption is off"</summary>
                    <p class="hint">"This notebook was made before Hearth encrypted notebooks: whoever runs the server can read it. Turning encryption on cannot be undone: every link stops working (their holders have no key), and you send new links."</p>
                    <button class="danger" data-testid="encrypt" on:click=move |_| {
                        if confirm("Encrypt this notebook? Every link stops working; send new links afterwards.") {
                            api::encrypt(ui);
                        }
                    }>"Encrypt this notebook"</button>
                </details>
            </Show>
            <details class="owner-token">
                <summary>"Owner token"</summary>
                <p class="hint">"If a device with owner access was lost, rotate the owner token: this device keeps owner access, every other owner device loses it."</p>
                <button class="danger" data-testid="rotate" on:click=move |_| {
                    if confirm("Rotate the owner token? Other devices holding the old owner token lose owner access.") {
                        api::rotate(ui);
                    }
                }>"Rotate owner token"</button>
            </details>
        </dialog>
    }
}

/// True when the open notebook has no keys (made before encryption; stays plain until the owner
/// turns it on).
fn plain(ui: Ui) -> bool {
    let ws = ui.ws.get();
    ui.workspaces
        .get()
        .iter()
        .any(|w| w.id == ws && w.keys.is_none())
}

/// One link of the list: its state in words, and Revoke while it still works.
#[component]
fn LinkRow(ui: Ui, t: TokenInfo) -> impl IntoView {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    let state = link_state(&t, now);
    let id = t.id.clone();
    view! {
        <tr data-testid="link-row" data-role=t.role.as_str() data-state=state>
            <td>{t.label.clone()}</td>
            <td>{if t.role == Role::Read { "can only read" } else { "can edit" }}</td>
            <td>{t.expires_at.map(api::format_time).unwrap_or_else(|| "never".into())}</td>
            <td>{state}</td>
            <td>{(state == "active").then(|| view! {
                <button data-testid="revoke" on:click=move |_| api::revoke(ui, id.clone())>"Revoke"</button>
            })}</td>
        </tr>
    }
}

/// "active", "expired" or "revoked" at `now` (seconds).
fn link_state(t: &TokenInfo, now: u64) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// What a new link lets its holder do, in a sentence.
fn link_words(role: Role, expires_at: Option<u64>) -> String {
    let access = if role == Role::Read {
        "Anyone with this link can read this notebook"
    } else {
        "Anyone with this link can edit this notebook"
    };
    match expires_at {
        Some(at) => format!("{access} until {}.", api::format_time(at)),
        None => format!("{access}; the link does not expire."),
    }
}

/// A browser confirmation dialog.
pub fn confirm(text: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(text).ok())
        .unwrap_or(false)
}
