//! History: edits grouped into sessions — one note, one tab, no long pause — with the note's
//! title, who (this device or another), when, and what changed. A session opens to the note as it
//! was after it (body, tasks, tags) and to each of its versions; restoring a note from any of them
//! is a new edit that syncs like any other.

use crate::api::{self, Ui};
use client_wasm::engine::{NoteChange, Session};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared_schema::model::Note;

/// The history page.
#[component]
pub fn HistoryPage(ui: Ui) -> impl IntoView {
    // Re-read when the notes change (local or remote edits add versions).
    let sessions = Memo::new(move |_| {
        ui.notes.track();
        api::sessions()
    });
    // The chosen session (by its newest version) and the version shown.
    let chosen = RwSignal::new(None::<String>);
    let version = RwSignal::new(None::<String>);
    let session = move || {
        let key = chosen.get()?;
        sessions
            .get()
            .into_iter()
            .find(|(s, _)| s.versions.first().map(|v| &v.id) == Some(&key))
    };
    view! {
        <div class="layout history">
            <ul class="sessions" data-testid="sessions" aria-label="Edits, newest first">
                <For each=move || sessions.get() key=|(s, _)| s.versions.first().map(|v| v.id.clone()).unwrap_or_default() let:item>
                    {
                        let (s, mine) = item;
                        let key = s.versions.first().map(|v| v.id.clone()).unwrap_or_default();
                        let title = session_title(ui, &s);
                        let (k1, k2) = (key.clone(), key.clone());
                        view! {
                            <li class:selected=move || chosen.get().as_deref() == Some(k1.as_str())>
                                <button class="note-link" data-testid="session" aria-current=move || (chosen.get().as_deref() == Some(k2.as_str())).to_string()
                                    on:click=move |_| { chosen.set(Some(key.clone())); version.set(Some(key.clone())); }>
                                    <strong dir="auto">{title}</strong>
                                    <span class="meta">{session_meta(&s, mine)}</span>
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
            <section class="snapshot" aria-label="The session">
                {move || match session() {
                    None => view! { <p class="empty">"Pick an edit on the left to see what it changed, and the note as it was."</p> }.into_any(),
                    Some((s, _)) => view! { <SessionView ui=ui session=s version=version /> }.into_any(),
                }}
            </section>
        </div>
    }
}

/// A session's note title now (or as it was, if purged), else what the session did.
fn session_title(ui: Ui, s: &Session) -> String {
    let Some(note) = &s.note else {
        return "The notebook (name, settings)".into();
    };
    ui.notes
        .get_untracked()
        .iter()
        .find(|n| &n.id == note)
        .map(|n| n.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "(untitled note)".into())
}

/// "12 edits · this device · 2026-12-02 10:31–10:40".
fn session_meta(s: &Session, mine: bool) -> String {
    let n = s.versions.len();
    let edits = if n == 1 {
        "1 edit".to_string()
    } else {
        format!("{n} edits")
    };
    let who = if mine {
        "this device"
    } else {
        "another device"
    };
    let from = api::format_time(s.started.max(0) as u64);
    let to = api::format_time(s.ended.max(0) as u64);
    let when = if from == to {
        from
    } else if from.get(..10) == to.get(..10) {
        format!("{from}–{}", to.get(11..).unwrap_or_default())
    } else {
        format!("{from} – {to}")
    };
    format!("{edits} · {who} · {when}")
}

/// What changed, in a sentence.
fn change_words(c: &NoteChange) -> String {
    let mut parts = Vec::new();
    if c.created {
        parts.push("created the note".to_string());
    }
    if c.after.is_none() {
        parts.push("deleted the note".to_string());
    }
    if c.title_changed && !c.created {
        parts.push("changed the title".to_string());
    }
    if c.body_added > 0 || c.body_removed > 0 {
        parts.push(format!(
            "text +{} / −{} characters",
            c.body_added, c.body_removed
        ));
    }
    if c.tasks.0 != c.tasks.1 {
        parts.push(format!("tasks {} → {}", c.tasks.0, c.tasks.1));
    }
    if !c.tags_added.is_empty() {
        parts.push(format!("tagged {}", c.tags_added.join(", ")));
    }
    if !c.tags_removed.is_empty() {
        parts.push(format!("untagged {}", c.tags_removed.join(", ")));
    }
    if parts.is_empty() {
        "Changed the note's details (pinned, done, order).".into()
    } else {
        let mut text = parts.join("; ");
        text[..1].make_ascii_uppercase();
        text + "."
    }
}

/// One session: what it changed, the note at the chosen version, and its versions.
#[component]
fn SessionView(ui: Ui, session: Session, version: RwSignal<Option<String>>) -> impl IntoView {
    let change = api::session_change(&session);
    let note_id = session.note.clone();
    let versions = session.versions.clone();
    let (count, open) = (versions.len(), versions.len() <= 12);
    let shown = move || {
        let v = version.get()?;
        let notes = api::notes_at(&v);
        Some((v, notes))
    };
    view! {
        <div class="session" data-testid="session-view">
            {match change {
                Ok(Some(c)) => view! { <p class="change" data-testid="session-change">{change_words(&c)}</p> }.into_any(),
                Ok(None) => view! { <p class="change" data-testid="session-change">"Notebook-wide changes (name, schema, several notes at once)."</p> }.into_any(),
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
            }}
            {move || shown().map(|(v, notes)| match notes {
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                Ok(notes) => {
                    let list: Vec<Note> = notes
                        .into_iter()
                        .filter(|n| note_id.as_ref().is_none_or(|id| &n.id == id))
                        .collect();
                    view! {
                        <ul class="notes" data-testid="old-notes">
                            {list.into_iter().map(|n| view! { <OldNote ui=ui version=v.clone() note=n /> }).collect_view()}
                        </ul>
                    }.into_any()
                }
            })}
            <details class="session-versions" open=open>
                <summary>{format!("Versions in this session ({count})")}</summary>
                <ul class="versions" data-testid="versions">
                    {versions.into_iter().map(|v| {
                        let id = v.id.clone();
                        let (k1, k2) = (id.clone(), id.clone());
                        let when = api::format_time(v.timestamp.max(0) as u64);
                        view! {
                            <li class:selected=move || version.get().as_deref() == Some(k1.as_str())>
                                <button class="note-link" data-testid="version"
                                    aria-current=move || (version.get().as_deref() == Some(k2.as_str())).to_string()
                                    on:click=move |_| version.set(Some(id.clone()))>
                                    {when} " · " {v.message.clone()}
                                </button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </details>
        </div>
    }
}

/// A note as it was: title, body, tasks and tags, and Restore.
#[component]
fn OldNote(ui: Ui, version: String, note: Note) -> impl IntoView {
    let id = note.id.clone();
    view! {
        <li class="old-note" data-testid="old-note">
            <strong dir="auto">{note.title.clone()}</strong>
            <pre data-testid="old-body" dir="auto">{note.body.clone()}</pre>
            {(!note.tasks.is_empty()).then(|| view! {
                <ul class="tasks" data-testid="old-tasks">
                    {note.tasks.iter().map(|t| view! {
                        <li class:done=t.done>{if t.done { "☑ " } else { "☐ " }}{t.text.clone()}</li>
                    }).collect_view()}
                </ul>
            })}
            {(!note.tags.is_empty()).then(|| view! {
                <p data-testid="old-tags">{note.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span> }).collect_view()}</p>
            })}
            <Show when=move || ui.can_edit()>
                <button data-testid="restore-version" on:click={
                    let (v, id) = (version.clone(), id.clone());
                    move |_| spawn_local(api::restore_note(ui, v.clone(), id.clone()))
                }>"Restore this note"</button>
            </Show>
        </li>
    }
}
