//! History: every edit is a version. Pick one to see the notes as they were (read-only) and
//! restore a note from it; the restore is a new edit and syncs like any other.

use crate::api::{self, Ui};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The history page.
#[component]
pub fn HistoryPage(ui: Ui) -> impl IntoView {
    // Re-read when the notes change (local or remote edits add versions).
    let versions = Memo::new(move |_| {
        ui.notes.track();
        api::history()
    });
    let chosen = RwSignal::new(None::<String>);
    let view_at = move || chosen.get().map(|v| (v.clone(), api::notes_at(&v)));
    view! {
        <div class="layout">
            <ol class="versions" data-testid="versions" aria-label="Versions, newest first">
                <For each=move || versions.get() key=|v| v.id.clone() let:v>
                    {
                        let id = v.id.clone();
                        let when = api::format_time(v.timestamp.max(0) as u64);
                        view! {
                            <li><button class="note-link" data-testid="version" on:click=move |_| chosen.set(Some(id.clone()))>
                                {when} " — " {v.message.clone()}</button></li>
                        }
                    }
                </For>
            </ol>
            <section class="snapshot" aria-label="The notebook at this version">
                {move || match view_at() {
                    None => view! { <p>"Pick a version to see the notes as they were."</p> }.into_any(),
                    Some((_, Err(e))) => view! { <p class="error">{e}</p> }.into_any(),
                    Some((version, Ok(notes))) => view! {
                        <ul class="notes" data-testid="old-notes">
                            {notes.into_iter().map(|n| {
                                let (v, id) = (version.clone(), n.id.clone());
                                view! {
                                    <li class="old-note" data-testid="old-note">
                                        <strong>{n.title.clone()}</strong>
                                        <pre data-testid="old-body">{n.body.clone()}</pre>
                                        <Show when=move || ui.can_edit()>
                                            <button data-testid="restore-version" on:click={
                                                let (v, id) = (v.clone(), id.clone());
                                                move |_| spawn_local(api::restore_note(ui, v.clone(), id.clone()))
                                            }>"Restore this note"</button>
                                        </Show>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </section>
        </div>
    }
}
