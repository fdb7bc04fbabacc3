//! The notes page: list (search, pinned first, trash), and the editor for title, body (caret kept
//! where it was while remote edits arrive), checklist, tags, pin, trash, restore and purge.

use crate::api::{self, Ui};
use crate::pages::share::confirm;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared_schema::model::Field;
use shared_schema::text;

/// A text input or a textarea.
enum TextField {
    Area(web_sys::HtmlTextAreaElement),
    Line(web_sys::HtmlInputElement),
}

impl TextField {
    fn value(&self) -> String {
        match self {
            Self::Area(t) => t.value(),
            Self::Line(i) => i.value(),
        }
    }

    fn selection(&self) -> Option<(u32, u32)> {
        let (a, b) = match self {
            Self::Area(t) => (t.selection_start(), t.selection_end()),
            Self::Line(i) => (i.selection_start(), i.selection_end()),
        };
        a.ok().flatten().zip(b.ok().flatten())
    }

    fn element(&self) -> &web_sys::Element {
        match self {
            Self::Area(t) => t.as_ref(),
            Self::Line(i) => i.as_ref(),
        }
    }

    fn set(&self, value: &str, selection: Option<(u32, u32)>) {
        match self {
            Self::Area(t) => {
                t.set_value(value);
                if let Some((a, b)) = selection {
                    let _ = t.set_selection_range(a, b);
                }
            }
            Self::Line(i) => {
                i.set_value(value);
                if let Some((a, b)) = selection {
                    let _ = i.set_selection_range(a, b);
                }
            }
        }
    }

    /// Puts `value` in; if the field has focus, keeps the caret and selection on the same text.
    /// The DOM counts UTF-16 units and the diff Unicode scalars: the caret is converted both ways
    /// (`shared_schema::text`), so emoji before it never shift it.
    fn set_stable(&self, value: &str) {
        let old = self.value();
        if old == value {
            return;
        }
        let focused = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .is_some_and(|a| &a == self.element());
        let (start, end, insert) = text::diff(&old, value);
        let n = insert.chars().count();
        let sel = self.selection().filter(|_| focused).map(|(a, b)| {
            let through = |c| text::caret_through(&old, value, c, start, end, n);
            (through(a), through(b))
        });
        self.set(value, sel);
    }
}

/// A plain Enter in a one-line field (not one that ends an input method's composition, which
/// only confirms the composed text).
fn enter_adds(ev: &leptos::ev::KeyboardEvent) -> bool {
    ev.key() == "Enter"
        && !ev.is_composing()
        && ev.key_code() != 229
        && !(ev.shift_key() || ev.ctrl_key() || ev.alt_key() || ev.meta_key())
}

/// Whether the list shows `n` under `(search, trash view)`; the search is lower case.
fn listed(n: &shared_schema::model::Note, (q, trash): &(String, bool)) -> bool {
    n.trashed == *trash
        && (q.is_empty()
            || n.title.to_lowercase().contains(q)
            || n.body.to_lowercase().contains(q)
            || n.tags.iter().any(|t| t.to_lowercase().contains(q)))
}

/// One line of the notes list.
#[derive(Clone)]
struct Row {
    id: String,
    title: String,
    updated_at: i64,
    pinned: bool,
}

/// The notes page.
#[component]
pub fn NotesPage(ui: Ui) -> impl IntoView {
    let (title, set_title) = signal(String::new());
    let search = RwSignal::new(String::new());
    let trash_view = RwSignal::new(false);
    let selected = RwSignal::new(None::<String>);
    // Others see which note this tab has open.
    Effect::new(move |_| crate::presence::set(ui, selected.get()));
    let add = move || {
        let t = title.get_untracked();
        if t.trim().is_empty() {
            return;
        }
        set_title.set(String::new());
        // The new note opens, ready for its body.
        spawn_local(async move {
            if let Some(id) = api::create_note(ui, t).await {
                search.set(String::new());
                trash_view.set(false);
                selected.set(Some(id));
            }
        });
    };
    // Which notes the list shows (trash view, search), read where it is needed: the rows are
    // made once per change (what a row shows, not whole notes: bodies are not cloned per edit),
    // the empty state and the count only count.
    let filter = move || (search.get().to_lowercase(), trash_view.get());
    let visible = move || {
        let f = filter();
        ui.notes.with(|notes| {
            notes
                .iter()
                .filter(|n| listed(n, &f))
                .map(|n| Row {
                    id: n.id.clone(),
                    title: n.title.clone(),
                    updated_at: n.updated_at,
                    pinned: n.pinned,
                })
                .collect::<Vec<Row>>()
        })
    };
    let visible_count = move || {
        let f = filter();
        ui.notes
            .with(|notes| notes.iter().filter(|n| listed(n, &f)).count())
    };
    let trashed_count = move || ui.notes.with(|ns| ns.iter().filter(|n| n.trashed).count());
    // The editor is built when another note is opened, not on every edit of the notebook.
    let open = Memo::new(move |_| {
        selected
            .get()
            .filter(|id| ui.notes.with(|ns| ns.iter().any(|n| &n.id == id)))
    });
    view! {
        <Show when=move || ui.can_edit()>
            // Enter and the button add the note themselves, without submitting the form: Chromium
            // spends ~1 ms in a form submission before its `submit` event reaches any listener
            // (docs/live-path.md), and that millisecond is on every note created. A submission
            // some other way (a mobile keyboard's "Go") still adds it.
            <form class="new-note" on:submit=move |ev| {
                ev.prevent_default();
                add();
            }>
                <label for="new-title">"New note"</label>
                <input id="new-title" data-testid="new-title" dir="auto" prop:value=move || title.get()
                    on:input=move |ev| set_title.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if enter_adds(&ev) {
                            ev.prevent_default();
                            add();
                        }
                    }
                    placeholder="Title" />
                <button type="button" on:click=move |_| add()>"Add"</button>
            </form>
        </Show>
        <div class="list-tools">
            <input type="search" aria-label="Search notes" placeholder="Search" data-testid="search"
                prop:value=move || search.get() on:input=move |ev| search.set(event_target_value(&ev)) />
            <button data-testid="toggle-trash" aria-pressed=move || trash_view.get().to_string()
                on:click=move |_| trash_view.update(|t| *t = !*t)>
                {move || if trash_view.get() { "Back to notes".to_string() } else { format!("Trash ({})", trashed_count()) }}
            </button>
        </div>
        <Show when=move || visible_count() == 0>
            <p class="empty" data-testid="empty-state">{move || {
                if trash_view.get() {
                    "The trash is empty."
                } else if !search.with(|q| q.trim().is_empty()) {
                    "No note matches this search (titles, text and tags are searched)."
                } else if ui.read_only.get() {
                    "This notebook has no notes yet."
                } else {
                    "No notes yet: type a title above and press Add. Everything is kept in this browser, even offline."
                }
            }}</p>
        </Show>
        <div class="layout">
            <ul class="notes" data-testid="notes" aria-label="Notes">
                <For each=visible key=|n| (n.id.clone(), n.title.clone(), n.updated_at, n.pinned) let:note>
                    {
                        let id = note.id.clone();
                        let label = if note.title.is_empty() { "(untitled)".to_string() } else { note.title.clone() };
                        let pinned = note.pinned;
                        view! {
                            <li class:selected=move || selected.get().as_deref() == Some(id.as_str())>
                                <button class="note-link" data-testid="note" dir="auto" on:click={
                                    let id = id.clone();
                                    move |_| {
                                        selected.set(Some(id.clone()));
                                        scroll_to_editor_on_narrow_screens();
                                    }
                                }>{pinned.then_some("★ ")}{label}</button>
                                <crate::presence::InNote ui=ui note=id.clone() />
                            </li>
                        }
                    }
                </For>
            </ul>
            {move || open.get().map(|id| view! { <Editor ui=ui note=id /> })}
        </div>
        <p class="count" data-testid="note-count">{move || {
            let total = ui.notes.with(|ns| ns.iter().filter(|n| !n.trashed).count());
            let noun = if total == 1 { "note" } else { "notes" };
            if search.with(|q| q.trim().is_empty()) || trash_view.get() {
                format!("{total} {noun}")
            } else {
                format!("{} of {total} {noun}", visible_count())
            }
        }}</p>
    }
}

/// The editor of one note.
#[component]
fn Editor(ui: Ui, note: String) -> impl IntoView {
    let id = StoredValue::new(note);
    // A memo: an edit of another note changes `ui.notes` but not this value, so nothing here
    // re-runs.
    let memo = Memo::new(move |_| {
        ui.notes
            .with(|ns| ns.iter().find(|n| n.id == id.get_value()).cloned())
    });
    let current = move || memo.get();
    let title_ref = NodeRef::<html::Input>::new();
    let body_ref = NodeRef::<html::Textarea>::new();
    // Per field: what it held after its last input (the base of the next one) and how many of its
    // edits are still being stored. While any are, the engine's text lags what is typed, so it is
    // not written back into the field (that would erase the keystrokes still queued); once the
    // last one is stored, the field takes the engine's text (remote edits included).
    let title_state = StoredValue::new((String::new(), 0usize));
    let body_state = StoredValue::new((String::new(), 0usize));
    let show = move || {
        let Some(n) = memo.get_untracked() else {
            return;
        };
        if let Some(el) = title_ref.get_untracked() {
            if title_state.with_value(|s| s.1 == 0) {
                TextField::Line(el).set_stable(&n.title);
                title_state.update_value(|s| s.0 = n.title.clone());
            }
        }
        if let Some(el) = body_ref.get_untracked() {
            if body_state.with_value(|s| s.1 == 0) {
                TextField::Area(el).set_stable(&n.body);
                body_state.update_value(|s| s.0 = n.body.clone());
            }
        }
    };
    Effect::new(move |_| {
        memo.track();
        title_ref.track();
        body_ref.track();
        show();
    });
    let typed = move |field: Field, new: String| {
        let state = match field {
            Field::Title => title_state,
            Field::Body => body_state,
        };
        let base = state.with_value(|s| s.0.clone());
        state.update_value(|s| {
            s.0 = new.clone();
            s.1 += 1;
        });
        spawn_local(async move {
            api::set_text(ui, id.get_value(), field, base, new).await;
            state.update_value(|s| s.1 -= 1);
            show();
        });
    };
    let task = RwSignal::new(String::new());
    let tag = RwSignal::new(String::new());
    let ro = move || !ui.can_edit();
    let note_id = move || id.get_value();
    view! {
        <article class="editor" data-testid="editor" aria-label="Note editor">
            <label>"Title"
                <input data-testid="edit-title" dir="auto" node_ref=title_ref prop:readOnly=ro
                    on:input=move |ev| typed(Field::Title, event_target_value(&ev)) />
            </label>
            <label>"Body"
                <textarea data-testid="edit-body" dir="auto" rows="10" node_ref=body_ref prop:readOnly=ro
                    on:input=move |ev| typed(Field::Body, event_target_value(&ev))></textarea>
            </label>
            <fieldset class="tasks-box">
                <legend>"Checklist"</legend>
                <ul class="tasks" data-testid="tasks">
                    {move || current().map(|n| {
                        let len = n.tasks.len();
                        n.tasks.into_iter().enumerate().map(|(i, t)| { let is_last = i + 1 >= len; view! {
                            <li data-testid="task">
                                <label><input type="checkbox" prop:checked=t.done prop:disabled=ro
                                    on:change=move |ev| spawn_local(api::toggle_task(ui, note_id(), i, event_target_checked(&ev))) />
                                    <span class:done=t.done>{t.text.clone()}</span></label>
                                <Show when=move || !ro()>
                                    <button class="icon" aria-label="Move up" prop:disabled=move || i == 0
                                        on:click=move |_| spawn_local(api::move_task(ui, note_id(), i, i.saturating_sub(1)))>"↑"</button>
                                    <button class="icon" aria-label="Move down" prop:disabled=is_last
                                        on:click=move |_| if !is_last { spawn_local(api::move_task(ui, note_id(), i, i + 1)) }>"↓"</button>
                                    <button class="icon" aria-label="Delete task"
                                        on:click=move |_| spawn_local(api::delete_task(ui, note_id(), i))>"✕"</button>
                                </Show>
                            </li>
                        }}).collect_view()
                    })}
                </ul>
                <Show when=move || !ro()>
                    <form class="inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        let text = task.get_untracked();
                        if !text.trim().is_empty() {
                            task.set(String::new());
                            spawn_local(api::add_task(ui, note_id(), text));
                        }
                    }>
                        <input data-testid="new-task" aria-label="New task" placeholder="Add a task"
                            prop:value=move || task.get() on:input=move |ev| task.set(event_target_value(&ev)) />
                        <button type="submit">"Add task"</button>
                    </form>
                </Show>
            </fieldset>
            <div class="tags" data-testid="tags">
                "Tags: "
                {move || current().map(|n| n.tags.into_iter().map(|t| {
                    let t2 = t.clone();
                    view! { <span class="tag">{t.clone()}
                        <Show when=move || !ro()>
                            <button class="icon" aria-label=format!("Remove tag {t2}") on:click={
                                let t3 = t2.clone();
                                move |_| spawn_local(api::set_tag(ui, note_id(), t3.clone(), false))
                            }>"×"</button>
                        </Show></span> }
                }).collect_view())}
                <Show when=move || !ro()>
                    <form class="inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        let t = tag.get_untracked();
                        if !t.trim().is_empty() {
                            tag.set(String::new());
                            spawn_local(api::set_tag(ui, note_id(), t, true));
                        }
                    }>
                        <input aria-label="New tag" placeholder="tag" data-testid="new-tag" prop:value=move || tag.get()
                            on:input=move |ev| tag.set(event_target_value(&ev)) />
                    </form>
                </Show>
            </div>
            <Show when=move || !ro()>
                <div class="note-actions">
                    {move || current().map(|n| {
                        let pinned = n.pinned;
                        let trashed = n.trashed;
                        view! {
                            <button data-testid="pin" on:click=move |_| spawn_local(api::set_pinned(ui, note_id(), !pinned))>
                                {if pinned { "Unpin" } else { "Pin" }}</button>
                            {if trashed {
                                view! {
                                    <button data-testid="restore" on:click=move |_| spawn_local(api::set_trashed(ui, note_id(), false))>"Restore"</button>
                                    <button data-testid="purge" class="danger" on:click=move |_| {
                                        if confirm("Delete this note for good? This cannot be undone (except from History).") {
                                            spawn_local(api::purge(ui, note_id()));
                                        }
                                    }>"Delete forever"</button>
                                }.into_any()
                            } else {
                                view! { <button data-testid="trash" on:click=move |_| spawn_local(api::set_trashed(ui, note_id(), true))>"Move to trash"</button> }.into_any()
                            }}
                        }
                    })}
                </div>
            </Show>
        </article>
    }
}

/// On a phone the editor sits below the list: bring it into view after a tap on a note (once
/// it is rendered).
fn scroll_to_editor_on_narrow_screens() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let narrow = window
        .inner_width()
        .ok()
        .and_then(|w| w.as_f64())
        .is_some_and(|w| w <= 640.0);
    if !narrow {
        return;
    }
    request_animation_frame(move || {
        if let Some(editor) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("[data-testid=editor]").ok().flatten())
        {
            editor.scroll_into_view();
        }
    });
}
