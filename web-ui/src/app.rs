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
    let details = RwSignal::new(false);
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
            <button class="status" data-testid="sync-status" data-code=move || ui.status_code.get()
                aria-expanded=move || details.get().to_string() aria-controls="status-details"
                title="Sync details" on:click=move |_| {
                    details.update(|d| *d = !*d);
                    spawn_local(crate::storage_health::check(ui));
                }>
                <span role="status" aria-live="polite">
                    {move || ui.status.get()}
                    {move || {
                        if ui.saving.get() > 0 {
                            Some(" · saving… not yet on the server")
                        } else {
                            (ui.pending.get() > 0).then_some(" · not yet on the server")
                        }
                    }}
                </span>
            </button>
            <crate::presence::Present ui=ui />
            {move || ui.progress.get().map(|(done, total)| view! {
                <progress class="sync-progress" data-testid="sync-progress" aria-label="Sync progress"
                    max=total.max(1).to_string() value=done.to_string()></progress>
            })}
        </header>
        <Show when=move || details.get()>
            <div class="status-details" id="status-details" data-testid="status-details">
                <p>{move || ui.status_detail.get().unwrap_or_else(|| ui.status.get())}</p>
                {move || (ui.pending.get() > 0).then(|| {
                    let n = ui.pending.get();
                    view! { <p>{format!("{n} update{} made here waiting to be sent (runs of typing go as one).", if n == 1 { "" } else { "s" })}</p> }
                })}
                <p>"Your access: " {move || access_words(ui)}</p>
                <p data-testid="worker-status">"Background sync: " {move || ui.worker.get()}</p>
                {move || ui.storage.get().map(|u| view! { <p data-testid="storage-usage">{u.words()}</p> })}
            </div>
        </Show>
        {move || ui.stopped.get().map(|(reason, message)| {
            let read_only = ui.read_only.get();
            view! {
                <div class="stopped" role="alert" data-testid="stopped" data-code=reason.as_str()>
                    <strong>{reason.headline()}</strong>
                    <p>{reason.action()}</p>
                    <details><summary>"Details"</summary><p>{message}</p></details>
                    {(!read_only && ui.pending.get() > 0).then(|| view! {
                        <p data-testid="stopped-pending">{format!(
                            "{} made here {} not on the server. They are kept on this device and in a backup you download.",
                            match ui.pending.get() { 1 => "1 edit".to_string(), n => format!("{n} edits") },
                            if ui.pending.get() == 1 { "is" } else { "are" }
                        )}
                        " "<button data-testid="stopped-backup" on:click=move |_| api::download_local_backup(ui, None)>"Download a backup"</button></p>
                    })}
                    {reason.blocks_edits().then_some(view! { <p>"Editing is off for this notebook here: nothing more could reach the server."</p> })}
                </div>
            }
        })}
        {move || ui.storage_warning.get().map(|text| view! {
            <p class="storage-health" role="alert" data-testid="storage-health">{text}
                <button class="link" aria-label="Dismiss" on:click=move |_| ui.storage_warning.set(None)>"×"</button></p>
        })}
        {move || {
            let q = ui.quarantined.get();
            (!q.is_empty()).then(|| {
                let seqs = q.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
                view! {
                    <p class="quarantine" role="status" data-testid="quarantine">{format!(
                        "{} update{} from this server could not be read (seq {seqs}); everything else is shown. They are kept aside, not applied.",
                        q.len(),
                        if q.len() == 1 { "" } else { "s" }
                    )}</p>
                }
            })
        }}
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
            {move || match page.get() {
                Page::Notes => view! { <pages::share::SharingBar ui=ui /><pages::notes::NotesPage ui=ui /> }.into_any(),
                Page::History => view! { <pages::history::HistoryPage ui=ui /> }.into_any(),
                Page::Backup => view! { <pages::backup::BackupPage ui=ui /> }.into_any(),
                Page::Notebooks => view! { <pages::workspaces::NotebooksPage ui=ui on_open=move || page.set(Page::Notes) /> }.into_any(),
            }}
        </main>
    }
}

/// The device's access to the open notebook, as a person says it.
fn access_words(ui: Ui) -> &'static str {
    if !ui.synced.get() {
        "owner (this notebook is on this device only)"
    } else if ui.master.get() {
        "owner"
    } else if ui.read_only.get() {
        "can read"
    } else {
        "can edit"
    }
}
