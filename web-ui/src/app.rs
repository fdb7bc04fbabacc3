//! The root component: header with sync status, sharing, the notes list and the note editor.

use crate::api::{self, Ui};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared_schema::model::Field;
use shared_schema::Role;

/// The app.
#[component]
pub fn App() -> impl IntoView {
    let ui = Ui::new();
    let (title, set_title) = signal(String::new());
    let selected = RwSignal::new(None::<String>);
    let task = RwSignal::new(String::new());

    spawn_local(async move {
        if let Err(e) = api::boot(ui).await {
            ui.error.set(Some(e.to_string()));
        }
    });

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = title.get_untracked();
        if t.trim().is_empty() {
            return;
        }
        set_title.set(String::new());
        spawn_local(api::create_note(ui, t));
    };
    let current = move || {
        let id = selected.get()?;
        ui.notes.get().into_iter().find(|n| n.id == id)
    };

    view! {
        <header class="top">
            <h1>"Hearth"</h1>
            <span class="ws-name" data-testid="workspace-name">{move || ui.name.get()}</span>
            <span class="status" data-testid="sync-status" role="status">
                {move || ui.status.get()}
                {move || (ui.pending.get() > 0).then(|| format!(" · {} not yet on the server", ui.pending.get()))}
            </span>
            <span class="worker" data-testid="worker-status">"worker: " {move || ui.worker.get()}</span>
        </header>
        <main>
            <Show when=move || ui.error.get().is_some()>
                <p class="error" role="alert" data-testid="error">{move || ui.error.get().unwrap_or_default()}</p>
            </Show>
            <section class="sharing">
                <Show when=move || !ui.synced.get() && ui.master.get()>
                    <button data-testid="connect" on:click=move |_| api::connect(ui)>"Sync with this server"</button>
                </Show>
                <Show when=move || ui.synced.get() && ui.master.get()>
                    <button data-testid="share-write" on:click=move |_| api::share(ui, Role::Write)>"Share (can edit)"</button>
                    <button data-testid="share-read" on:click=move |_| api::share(ui, Role::Read)>"Share (read-only)"</button>
                </Show>
                <Show when=move || ui.synced.get() && ui.master.get()>
                    <button data-testid="show-links" on:click=move |_| api::list_tokens(ui)>"Links"</button>
                </Show>
                <Show when=move || ui.share_link.get().is_some()>
                    <label>"Share link " <input readonly data-testid="share-link" prop:value=move || ui.share_link.get().unwrap_or_default() /></label>
                </Show>
                <Show when=move || !ui.tokens.get().is_empty()>
                    <table class="links" data-testid="links">
                        <thead><tr><th>"Link"</th><th>"Role"</th><th>"Expires"</th><th></th></tr></thead>
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
                                            <td>{t.expires_at.map(|e| format!("{e}")).unwrap_or_else(|| "never".into())}</td>
                                            <td>{if revoked { view! { <span>"revoked"</span> }.into_any() }
                                                 else if is_owner { view! { <span>"this device"</span> }.into_any() }
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
            <Show when=move || !ui.read_only.get()>
                <form on:submit=add class="new-note">
                    <label for="new-title">"New note"</label>
                    <input id="new-title" data-testid="new-title" prop:value=move || title.get()
                        on:input=move |ev| set_title.set(event_target_value(&ev)) placeholder="Title" />
                    <button type="submit">"Add"</button>
                </form>
            </Show>
            <div class="layout">
                <ul class="notes" data-testid="notes">
                    <For each=move || ui.notes.get() key=|n| (n.id.clone(), n.title.clone(), n.updated_at) let:note>
                        {
                            let id = note.id.clone();
                            let label = if note.title.is_empty() { "(untitled)".to_string() } else { note.title.clone() };
                            view! {
                                <li><button class="note-link" data-testid="note" on:click=move |_| selected.set(Some(id.clone()))>{label}</button></li>
                            }
                        }
                    </For>
                </ul>
                <Show when=move || current().is_some()>
                    <article class="editor" data-testid="editor">
                        <label>"Title"
                            <input data-testid="edit-title" prop:value=move || current().map(|n| n.title).unwrap_or_default()
                                prop:readOnly=move || ui.read_only.get()
                                on:input=move |ev| if let Some(id) = selected.get_untracked() {
                                    spawn_local(api::set_text(ui, id, Field::Title, event_target_value(&ev)));
                                } />
                        </label>
                        <label>"Body"
                            <textarea data-testid="edit-body" rows="10" prop:value=move || current().map(|n| n.body).unwrap_or_default()
                                prop:readOnly=move || ui.read_only.get()
                                on:input=move |ev| if let Some(id) = selected.get_untracked() {
                                    spawn_local(api::set_text(ui, id, Field::Body, event_target_value(&ev)));
                                }></textarea>
                        </label>
                        <ul class="tasks">
                            {move || current().map(|n| n.tasks.into_iter().enumerate().map(|(i, t)| {
                                let id = n.id.clone();
                                view! { <li><label><input type="checkbox" prop:checked=t.done prop:disabled=move || ui.read_only.get()
                                    on:change=move |ev| spawn_local(api::toggle_task(ui, id.clone(), i, event_target_checked(&ev)))/>{t.text}</label></li> }
                            }).collect_view())}
                        </ul>
                        <Show when=move || !ui.read_only.get()>
                            <form class="new-task" on:submit=move |ev: leptos::ev::SubmitEvent| {
                                ev.prevent_default();
                                let text = task.get_untracked();
                                if let (Some(id), false) = (selected.get_untracked(), text.trim().is_empty()) {
                                    task.set(String::new());
                                    spawn_local(api::add_task(ui, id, text));
                                }
                            }>
                                <input data-testid="new-task" aria-label="New task" placeholder="Add a task"
                                    prop:value=move || task.get() on:input=move |ev| task.set(event_target_value(&ev)) />
                                <button type="submit">"Add task"</button>
                            </form>
                        </Show>
                    </article>
                </Show>
            </div>
            <p class="count" data-testid="note-count">{move || format!("{} notes", ui.notes.get().len())}</p>
        </main>
    }
}
