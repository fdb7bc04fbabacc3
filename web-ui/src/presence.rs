//! Presence: who else has this notebook open, and in which note. This tab has a random id; it
//! tells its sync worker what it has open (the worker sends the heartbeats), and hears the list
//! from the syncing worker's live channel through the BroadcastChannel. Shown as coloured
//! initials in the header and beside the note each one has open. A note's row follows a signal
//! of its own, so a change of presence re-renders the rows it concerns, not every row of the list.

use crate::api::{self, Ui};
use leptos::prelude::*;
use shared_schema::api::Peer;
use shared_schema::Role;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use worker::protocol::WorkerRequest;

thread_local! {
    static DEVICE: String = format!("{:012x}", client_wasm::ids::random_u64() & 0xffff_ffff_ffff);
    /// Per note a row has shown: who else has it open.
    static IN_NOTE: RefCell<HashMap<String, ArcRwSignal<Vec<Peer>>>> = RefCell::default();
}

/// This tab's id.
pub fn device() -> String {
    DEVICE.with(Clone::clone)
}

/// Tells the worker this tab has the current notebook open, in `note`.
pub fn set(ui: Ui, note: Option<String>) {
    let ws = ui.ws.get_untracked();
    if ws.is_empty() {
        return;
    }
    api::send(WorkerRequest::Presence {
        ws,
        device: device(),
        note,
    });
}

/// The list heard for the current notebook, without this tab (empty: another notebook opened).
/// Only the rows of notes someone entered or left are told.
pub fn heard(ui: Ui, peers: Vec<Peer>) {
    let me = device();
    let peers: Vec<Peer> = peers.into_iter().filter(|p| p.device != me).collect();
    let touched: HashSet<String> = ui.peers.with_untracked(|before| {
        before
            .iter()
            .chain(&peers)
            .filter_map(|p| p.note.clone())
            .collect()
    });
    let rows: Vec<_> = IN_NOTE.with(|m| {
        let m = m.borrow();
        touched
            .iter()
            .filter_map(|note| Some((m.get(note)?.clone(), in_note(&peers, note))))
            .collect()
    });
    for (signal, here) in rows {
        if signal.with_untracked(|shown| *shown != here) {
            signal.set(here);
        }
    }
    api::set_changed(ui.peers, peers);
}

fn in_note(peers: &[Peer], note: &str) -> Vec<Peer> {
    peers
        .iter()
        .filter(|p| p.note.as_deref() == Some(note))
        .cloned()
        .collect()
}

/// The signal of `note`'s row, made with what is known now the first time a row shows it (each
/// holds `in_note(ui.peers, note)`: [`heard`] keeps it so).
fn row_signal(ui: Ui, note: &str) -> ArcRwSignal<Vec<Peer>> {
    IN_NOTE.with(|m| {
        m.borrow_mut()
            .entry(note.to_owned())
            .or_insert_with(|| {
                ArcRwSignal::new(ui.peers.with_untracked(|peers| in_note(peers, note)))
            })
            .clone()
    })
}

/// A stable colour for a device.
fn colour(device: &str) -> String {
    let h = device
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("hsl({}, 65%, 45%)", h % 360)
}

fn initial(p: &Peer) -> &'static str {
    match p.role {
        Role::Master => "O",
        Role::Write => "E",
        Role::Read => "R",
    }
}

fn label(p: &Peer) -> String {
    let who = match p.role {
        Role::Master => "the owner",
        Role::Write => "an editor",
        Role::Read => "a reader",
    };
    format!(
        "{who} ({}) has this open",
        &p.device[..p.device.len().min(6)]
    )
}

/// One dot per peer in `peers`.
fn dots(peers: Vec<Peer>, testid: &'static str) -> impl IntoView {
    peers
        .into_iter()
        .map(|p| {
            view! {
                <span class="peer" data-testid=testid data-device=p.device.clone()
                    title=label(&p) aria-label=label(&p)
                    style=format!("background:{}", colour(&p.device))>{initial(&p)}</span>
            }
        })
        .collect_view()
}

/// Everyone else who has the notebook open (header).
#[component]
pub fn Present(ui: Ui) -> impl IntoView {
    view! {
        <span class="present" data-testid="present">
            {move || dots(ui.peers.get(), "peer")}
        </span>
    }
}

/// Everyone else who has `note` open (beside the note in the list).
#[component]
pub fn InNote(ui: Ui, note: String) -> impl IntoView {
    let here = row_signal(ui, &note);
    move || dots(here.get(), "note-peer")
}
