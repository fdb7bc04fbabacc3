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
            <crate::presence::Present ui=ui />
            <span class="worker" data-testid="worker-status">"worker: " {move || ui.worker.get()}</span>
            {move || ui.progress.get().map(|(done, total)| view! {
                <progress class="sync-progress" data-testid="sync-progress" aria-label="Sync progress"
                    max=total.max(1).to_string() value=done.to_string()></progress>
            })}
        </header>
        {move || ui.stopped.get().map(|(reason, message)| {
            let read_only = ui.read_only.get();
            view! {
                <div class="stopped" role="alert" data-testid="stopped" data-code=reason.as_str()>
                    <strong>{reason.headline()}</strong>
                    <p>{message}</p>
                    <p>{reason.action()}</p>
                    {(!read_only && ui.pending.get() > 0).then(|| view! {
                        <p data-testid="stopped-pending">{format!(
                            "{} edits made here are not on the server. They are kept on this device and in a backup you download.",
                            ui.pending.get()
                        )}</p>
                    })}
                </div>
            }
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
