//! Sharing (owner): register on the server, mint links with a role, expiry and label, show them
//! with a copy button and a QR code, list live links with revoke, rotate the owner token.

use crate::api::{self, Ui};
use leptos::prelude::*;
use shared_schema::Role;

/// The sharing bar above every page.
#[component]
pub fn SharingBar(ui: Ui) -> impl IntoView {
    let days = RwSignal::new(7u64);
    let label = RwSignal::new(String::new());
    let custom_role = RwSignal::new(Role::Write);
    let quick = move |role: Role| {
        api::mint(
            ui,
            role,
            Some(7 * 24 * 3600),
            format!("{} link", role.as_str()),
        )
    };
    view! {
        <section class="sharing" aria-label="Sharing">
            <Show when=move || !ui.synced.get() && ui.master.get()>
                <button data-testid="connect" on:click=move |_| api::connect(ui)>"Sync with this server"</button>
            </Show>
            <Show when=move || ui.synced.get() && ui.master.get()>
                <button data-testid="share-write" on:click=move |_| quick(Role::Write)>"Share (can edit)"</button>
                <button data-testid="share-read" on:click=move |_| quick(Role::Read)>"Share (read-only)"</button>
                <details class="custom-share">
                    <summary>"Custom link…"</summary>
                    <form on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        let d = days.get_untracked();
                        api::mint(ui, custom_role.get_untracked(), (d > 0).then_some(d * 24 * 3600), label.get_untracked());
                    }>
                        <label>"Access "
                            <select on:change=move |ev| custom_role.set(if event_target_value(&ev) == "read" { Role::Read } else { Role::Write })>
                                <option value="write">"can edit"</option>
                                <option value="read">"read-only"</option>
                            </select>
                        </label>
                        <label>"Expires in (days, 0 = never) "
                            <input type="number" min="0" max="3650" prop:value=move || days.get().to_string()
                                on:input=move |ev| days.set(event_target_value(&ev).parse().unwrap_or(7)) />
                        </label>
                        <label>"Label " <input placeholder="Ann's phone" prop:value=move || label.get()
                            on:input=move |ev| label.set(event_target_value(&ev)) /></label>
                        <button type="submit">"Create link"</button>
                    </form>
                </details>
                <button data-testid="show-links" on:click=move |_| api::list_tokens(ui)>"Links"</button>
                <button data-testid="rotate" on:click=move |_| {
                    if confirm("Rotate the owner token? Other devices holding the old owner token lose owner access.") {
                        api::rotate(ui);
                    }
                }>"Rotate owner token"</button>
            </Show>
            <Show when=move || ui.share_link.get().is_some()>
                <div class="share-result">
                    <label>"Share link " <input readonly data-testid="share-link" prop:value=move || ui.share_link.get().unwrap_or_default() /></label>
                    <button data-testid="copy-link" on:click=move |_| {
                        api::copy(&ui.share_link.get_untracked().unwrap_or_default());
                        ui.notice.set(Some("Link copied.".into()));
                    }>"Copy"</button>
                    <div class="qr" data-testid="qr" aria-label="QR code of the share link"
                        inner_html=move || ui.share_link.get().and_then(|l| api::qr_svg(&l)).unwrap_or_default()></div>
                </div>
            </Show>
            <Show when=move || !ui.tokens.get().is_empty()>
                <table class="links" data-testid="links">
                    <thead><tr><th>"Link"</th><th>"Access"</th><th>"Expires"</th><th></th></tr></thead>
                    <tbody>
                        <For each=move || ui.tokens.get() key=|t| (t.id.clone(), t.revoked_at) let:t>
                            {
                                let id = t.id.clone();
                                let revoked = t.revoked_at.is_some();
                                let is_owner = t.role == Role::Master;
                                view! {
                                    <tr data-testid="link-row" data-role=t.role.as_str()>
                                        <td>{t.label.clone()}</td>
                                        <td>{t.role.as_str()}</td>
                                        <td>{t.expires_at.map(api::format_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>{if revoked { view! { <span>"revoked"</span> }.into_any() }
                                             else if is_owner { view! { <span>"owner"</span> }.into_any() }
                                             else { view! { <button data-testid="revoke" on:click=move |_| api::revoke(ui, id.clone())>"Revoke"</button> }.into_any() }}</td>
                                    </tr>
                                }
                            }
                        </For>
                    </tbody>
                </table>
            </Show>
            <Show when=move || ui.read_only.get()>
                <p class="badge" data-testid="read-only">"Read-only: shared with you to read"</p>
            </Show>
        </section>
    }
}

/// A browser confirmation dialog.
pub fn confirm(text: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(text).ok())
        .unwrap_or(false)
}
