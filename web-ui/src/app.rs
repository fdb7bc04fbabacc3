//! The root component: workspace header, worker status and the notes list.

use crate::api;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The app.
#[component]
pub fn App() -> impl IntoView {
    let (name, set_name) = signal(String::from("…"));
    let (notes, set_notes) = signal(Vec::new());
    let (worker, set_worker) = signal(String::from("starting"));
    let (error, set_error) = signal(None::<String>);
    let (title, set_title) = signal(String::new());

    spawn_local(async move {
        match api::open_default().await {
            Ok(n) => {
                set_name.set(n);
                set_notes.set(api::notes());
            }
            Err(e) => set_error.set(Some(e.to_string())),
        }
    });
    api::start_worker(move |version| set_worker.set(format!("ready (v{version})")));

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = title.get_untracked();
        if t.trim().is_empty() {
            return;
        }
        spawn_local(async move {
            match api::create_note(t).await {
                Ok(()) => {
                    set_title.set(String::new());
                    set_notes.set(api::notes());
                }
                Err(e) => set_error.set(Some(e.to_string())),
            }
        });
    };

    view! {
        <header class="top">
            <h1>"Hearth"</h1>
            <span class="ws-name" data-testid="workspace-name">{move || name.get()}</span>
            <span class="status" data-testid="worker-status">"sync worker: " {move || worker.get()}</span>
        </header>
        <main>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <form on:submit=add class="new-note">
                <label for="new-title">"New note"</label>
                <input id="new-title" data-testid="new-title" prop:value=move || title.get()
                    on:input=move |ev| set_title.set(event_target_value(&ev)) placeholder="Title" />
                <button type="submit">"Add"</button>
            </form>
            <ul class="notes" data-testid="notes">
                <For each=move || notes.get() key=|n| n.id.clone() let:note>
                    <li>{note.title.clone()}</li>
                </For>
            </ul>
            <p class="count" data-testid="note-count">{move || format!("{} notes", notes.get().len())}</p>
        </main>
    }
}
