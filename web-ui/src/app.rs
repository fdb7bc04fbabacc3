//! The shell: header with the workspace and the sync status, the sharing bar, navigation, and the
//! current page.

use crate::api::{self, Ui};
use crate::pages;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The pages of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// Notes list and editor.
    Notes,
    /// Versions of the workspace.
    History,
    /// Backup download and restore.
    Backup,
    /// Notebooks stored in this browser.
    Notebooks,
}

/// The app.
#[component]
pub fn App() -> impl IntoView {
    let ui = Ui::new();
    let page = RwSignal::new(Page::Notes);
    spawn_local(async move {
        if let Err(e) = api::boot(ui).await {
            ui.error.set(Some(e.to_string()));
        }
    });
    let tab = move |p: Page, label: &'static str, id: &'static str| {
        view! {
            <button role="tab" data-testid=id aria-selected=move || (page.get() == p).to_string()
                class:active=move || page.get() == p on:click=move |_| page.set(p)>{label}</button>
        }
    };
    view! {
        <header class="top">
            <h1>"Hearth"</h1>
            <span class="ws-name" data-testid="workspace-name">{move || ui.name.get()}</span>
            <span class="status" data-testid="sync-status" role="status" aria-live="polite">
                {move || ui.status.get()}
                {move || (ui.pending.get() > 0).then(|| format!(" · {} not yet on the server", ui.pending.get()))}
            </span>
            <span class="worker" data-testid="worker-status">"worker: " {move || ui.worker.get()}</span>
            {move || ui.progress.get().map(|(done, total)| view! {
                <progress class="sync-progress" data-testid="sync-progress" aria-label="Sync progress"
                    max=total.max(1).to_string() value=done.to_string()></progress>
            })}
        </header>
        {move || ui.stopped.get().map(|(code, message)| {
            let title = match code.as_str() {
                "token_revoked" => "This link was revoked",
                "token_expired" => "This link has expired",
                "workspace_deleted" => "This notebook was deleted on the server",
                "chain_mismatch" => "Sync stopped: the server's data failed its integrity check",
                "storage_full" => "Browser storage is full",
                _ => "Sync stopped",
            };
            view! {
                <div class="stopped" role="alert" data-testid="stopped" data-code=code.clone()>
                    <strong>{title}</strong>
                    <p>{message}</p>
                    <p>"Your notes stay on this device and remain readable. Ask the owner for a new link, or download a backup from the Backup page."</p>
                </div>
            }
        })}
        <nav class="tabs" role="tablist" aria-label="Pages">
            {tab(Page::Notes, "Notes", "tab-notes")}
            {tab(Page::History, "History", "tab-history")}
            {tab(Page::Backup, "Backup", "tab-backup")}
            {tab(Page::Notebooks, "Notebooks", "tab-notebooks")}
        </nav>
        <main>
            <Show when=move || ui.error.get().is_some()>
                <p class="error" role="alert" data-testid="error">{move || ui.error.get().unwrap_or_default()}
                    <button class="link" aria-label="Dismiss" on:click=move |_| ui.error.set(None)>"×"</button></p>
            </Show>
            <Show when=move || ui.notice.get().is_some()>
                <p class="notice" role="status" data-testid="notice">{move || ui.notice.get().unwrap_or_default()}
                    <button class="link" aria-label="Dismiss" on:click=move |_| ui.notice.set(None)>"×"</button></p>
            </Show>
            <pages::share::SharingBar ui=ui />
            {move || match page.get() {
                Page::Notes => view! { <pages::notes::NotesPage ui=ui /> }.into_any(),
                Page::History => view! { <pages::history::HistoryPage ui=ui /> }.into_any(),
                Page::Backup => view! { <pages::backup::BackupPage ui=ui /> }.into_any(),
                Page::Notebooks => view! { <pages::workspaces::NotebooksPage ui=ui on_open=move || page.set(Page::Notes) /> }.into_any(),
            }}
        </main>
    }
}
