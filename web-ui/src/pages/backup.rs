//! Backups: download the server's backup (owner) or this device's copy (works offline) — plain, or
//! encrypted with its keys behind a passphrase — and restore a backup file as a new notebook.

use crate::api::{self, Ui};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

/// The backup page.
#[component]
pub fn BackupPage(ui: Ui) -> impl IntoView {
    let passphrase = RwSignal::new(String::new());
    let restore_passphrase = RwSignal::new(String::new());
    view! {
        <section class="backup">
            <h2>"Backup"</h2>
            <p>"A backup file holds the whole notebook. Keep it anywhere; restoring creates a new notebook."</p>
            <p class="hint">"This device's copy is readable by whoever has the file. The server's backup is encrypted: it restores only in a browser that has this notebook."</p>
            <button data-testid="backup-local" on:click=move |_| api::download_local_backup(ui, None)>"Download this device's copy"</button>
            <label>"Passphrase "
                <input type="password" data-testid="backup-passphrase" autocomplete="new-password"
                    prop:value=move || passphrase.get()
                    on:input=move |ev| passphrase.set(event_target_value(&ev)) />
            </label>
            <button data-testid="backup-keys" prop:disabled=move || passphrase.get().chars().count() < 8
                on:click=move |_| api::download_local_backup(ui, Some(passphrase.get_untracked()))>
                "Download an encrypted copy with its keys"
            </button>
            <p class="hint">"The encrypted copy opens anywhere with this passphrase (at least 8 characters), and nowhere without it."</p>
            <Show when=move || ui.synced.get() && ui.master.get()>
                <button data-testid="backup-server" on:click=move |_| api::download_server_backup(ui)>"Download the server's backup"</button>
            </Show>
            <h2>"Restore"</h2>
            <label>"Passphrase of an encrypted copy "
                <input type="password" data-testid="restore-passphrase" autocomplete="off"
                    prop:value=move || restore_passphrase.get()
                    on:input=move |ev| restore_passphrase.set(event_target_value(&ev)) />
            </label>
            <label>"Restore from a file "
                <input type="file" accept=".hearth,application/octet-stream" data-testid="restore-file"
                    on:change=move |ev| {
                        let file = ev.target()
                            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                            .and_then(|i| i.files())
                            .and_then(|f| f.get(0));
                        if let Some(file) = file {
                            let words = restore_passphrase.get_untracked();
                            spawn_local(api::restore_backup(ui, file, (!words.is_empty()).then_some(words)));
                        }
                    } />
            </label>
        </section>
    }
}
