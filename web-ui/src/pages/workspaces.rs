//! Notebooks stored in this browser: open, create, rename, leave (forget locally), and delete on
//! the server (owner, with confirmation).

use crate::api::{self, Ui};
use crate::pages::share::confirm;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The notebooks page.
#[component]
pub fn NotebooksPage(ui: Ui, on_open: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let new_name = RwSignal::new(String::new());
    let rename_to = RwSignal::new(String::new());
    view! {
        <section class="notebooks">
            <h2>"Notebooks on this device"</h2>
            <ul data-testid="notebooks">
                <For each=move || ui.workspaces.get() key=|w| (w.id.clone(), w.name.clone()) let:w>
                    {
                        let id = w.id.clone();
                        let is_open = move || ui.ws.get() == id;
                        let id2 = w.id.clone();
                        view! {
                            <li data-testid="notebook">
                                <button class="note-link" on:click=move |_| {
                                    spawn_local(api::open_workspace(ui, id2.clone()));
                                    on_open();
                                }>{w.name.clone()} {move || is_open().then_some(" (open)")}</button>
                                <small>{w.role.as_str()} {if w.server_url.is_some() { " · synced" } else { " · this device only" }}</small>
                            </li>
                        }
                    }
                </For>
            </ul>
            <form on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let name = new_name.get_untracked();
                if !name.trim().is_empty() {
                    new_name.set(String::new());
                    spawn_local(api::create_workspace(ui, name));
                    on_open();
                }
            }>
                <label>"New notebook " <input data-testid="new-notebook" prop:value=move || new_name.get()
                    on:input=move |ev| new_name.set(event_target_value(&ev)) /></label>
                <button type="submit">"Create"</button>
            </form>
            <h2>"This notebook"</h2>
            <Show when=move || ui.can_edit()>
                <form on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    let name = rename_to.get_untracked();
                    if !name.trim().is_empty() {
                        spawn_local(api::rename(ui, name));
                    }
                }>
                    <label>"Rename to " <input data-testid="rename" prop:value=move || rename_to.get()
                        on:input=move |ev| rename_to.set(event_target_value(&ev)) /></label>
                    <button type="submit">"Rename"</button>
                </form>
            </Show>
            <button data-testid="leave" on:click=move |_| {
                spawn_local(async move {
                    let unsynced = api::unsynced_edits().await;
                    let question = if unsynced > 0 {
                        "Some edits of this notebook are only on this device (not on the server). Forget it anyway? A backup of this device's copy is downloaded first.".to_string()
                    } else {
                        "Forget this notebook on this device? Copies on the server and other devices stay.".to_string()
                    };
                    if confirm(&question) {
                        if unsynced > 0 {
                            api::download_local_backup(ui, None);
                        }
                        api::leave_workspace(ui, ui.ws.get_untracked()).await;
                    }
                });
            }>"Forget on this device"</button>
            <Show when=move || ui.synced.get() && ui.master.get()>
                <button data-testid="delete-remote" class="danger" on:click=move |_| {
                    if confirm("Delete this notebook on the server? Everyone you shared it with loses access. This cannot be undone.") {
                        api::delete_remote(ui);
                    }
                }>"Delete on the server"</button>
            </Show>
        </section>
    }
}
