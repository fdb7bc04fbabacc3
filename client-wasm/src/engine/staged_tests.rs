//! Staged edits: the engine hands each edit's pending update to the sync core while its write
//! commits, and the core pushes it without reading storage — but never ahead of an unsent edit
//! storage holds, never with a token another worker has replaced, and never merged into.

use super::tests::Device;
use super::Engine;
use crate::storage::{MemoryStore, PendingUpdate, Store};
use crate::sync::memory::MemoryServer;
use futures::executor::block_on;
use shared_schema::model::Field;
use shared_schema::Role;
use std::cell::RefCell;
use std::rc::Rc;

type R = Result<(), Box<dyn std::error::Error>>;

/// Turns staging on for the device's engine; what it stages lands in the returned list (the
/// page's broadcast, which the worker hands to `SyncCore::stage`).
type Sink = Rc<RefCell<Vec<(PendingUpdate, Option<String>)>>>;

fn stage_into(device: &Device) -> Sink {
    let staged: Sink = Rc::new(RefCell::new(Vec::new()));
    let sink = staged.clone();
    device.engine.set_stager(Some(Rc::new(
        move |u: &PendingUpdate, after: Option<&str>| {
            sink.borrow_mut()
                .push((u.clone(), after.map(str::to_owned)))
        },
    )));
    staged
}

/// Delivers what was staged to the core, as the worker does with `Staged` broadcasts.
fn deliver(device: &Device, staged: &Sink) {
    for (u, after) in staged.borrow_mut().drain(..) {
        device.core.stage(&device.engine.id(), u, after);
    }
}

/// The titles a new reader of the server's log sees (sorted).
async fn titles_on_server(
    server: &MemoryServer,
    owner: &Device,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let ws = owner.engine.id();
    let reader = Device::member(server, &owner.store, &ws, Role::Read).await?;
    reader.sync().await?;
    let mut titles: Vec<String> = reader.engine.notes().into_iter().map(|n| n.title).collect();
    titles.sort();
    Ok(titles)
}

#[test]
fn a_staged_edit_is_pushed_without_reading_storage_once_storage_is_known_clean() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        let staged = stage_into(&owner);
        owner.engine.create_note("first").await?;
        let first = owner.engine.last_stored_update().ok_or("nothing stored")?;
        assert_eq!(
            staged.borrow().first(),
            Some(&(first.clone(), None)),
            "staged as stored, after nothing pending"
        );
        deliver(&owner, &staged);
        // Its stored broadcast follows: known, so nothing to read.
        assert!(!owner.core.stored(&ws, Some(&first.key)));
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 1);
        let record = owner.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert!(
            record.pushed_upto.as_deref() < Some(first.key.as_str()),
            "the push did not read the pending queue (a read records how far it read)"
        );
        // Answered before the acknowledgement is stored (in a browser that transaction waits
        // behind the page's next write): pending until the round's bookkeeping runs.
        assert_eq!(
            owner.store.pending(&ws).await?,
            std::slice::from_ref(&first)
        );
        owner.core.settle(&ws).await?;
        assert!(owner.store.pending(&ws).await?.is_empty(), "acknowledged");
        assert_eq!(titles_on_server(&server, &owner).await?, ["first"]);
        // Never merged into: the next edit is a pending update of its own.
        owner.engine.create_note("second").await?;
        let second = owner.engine.last_stored_update().ok_or("nothing stored")?;
        assert_ne!(second.key, first.key);
        assert_eq!(owner.store.pending(&ws).await?, [second]);
        Ok(())
    })
}

#[test]
fn the_next_staged_edit_goes_out_before_the_previous_acknowledgement_is_stored() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        let before = server.records(&ws).len();
        let staged = stage_into(&owner);
        owner.engine.create_note("first").await?;
        let first = owner.engine.last_stored_update().ok_or("nothing stored")?;
        deliver(&owner, &staged);
        assert_eq!(owner.core.push_round(&ws, &|_, _| {}).await?.pushed, 1);
        // Its acknowledgement is not stored yet; the next edit, made on top of it, is pushed at
        // once (the server acknowledged its predecessor), without reading storage.
        owner.engine.create_note("second").await?;
        let second = owner.engine.last_stored_update().ok_or("nothing stored")?;
        deliver(&owner, &staged);
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(
            round.pushed, 1,
            "only the second: the first is on the server"
        );
        let record = owner.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert!(
            record.pushed_upto.as_deref() < Some(first.key.as_str()),
            "no read"
        );
        assert_eq!(owner.store.pending(&ws).await?, [first, second]);
        assert_eq!(
            titles_on_server(&server, &owner).await?,
            ["first", "second"]
        );
        assert_eq!(server.records(&ws).len(), before + 2, "each edit once");
        // A round that reads storage stores what was left first, and pushes nothing again.
        let round = owner.core.sync_once(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 0);
        assert!(
            owner.store.pending(&ws).await?.is_empty(),
            "both acknowledged"
        );
        assert_eq!(server.records(&ws).len(), before + 2);
        Ok(())
    })
}

#[test]
fn an_edit_whose_acknowledgement_was_never_stored_is_pushed_again_and_gets_the_same_seq() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        let staged = stage_into(&owner);
        owner.engine.create_note("once").await?;
        deliver(&owner, &staged);
        assert_eq!(owner.core.push_round(&ws, &|_, _| {}).await?.pushed, 1);
        let head = server.log(&ws).ok_or("no log")?.head;
        // The worker is gone before its bookkeeping ran: a new one reads storage.
        let fresh = crate::sync::SyncCore::new(owner.store.clone(), server.clone());
        let round = fresh.sync_once(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 1, "still pending: pushed again");
        assert_eq!(
            server.log(&ws).ok_or("no log")?.head,
            head,
            "the server kept one copy"
        );
        assert!(owner.store.pending(&ws).await?.is_empty());
        assert_eq!(titles_on_server(&server, &owner).await?, ["once"]);
        Ok(())
    })
}

#[test]
fn an_unstaged_edit_in_storage_goes_to_the_server_before_a_staged_one_made_after_it() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        // Another tab, without staging, stores an edit; its broadcast reaches the worker.
        let other_tab = Engine::open(owner.store.clone(), &ws).await?;
        other_tab.create_note("unstaged").await?;
        let unstaged = other_tab.last_stored_update().ok_or("nothing stored")?;
        assert!(owner.core.stored(&ws, Some(&unstaged.key)));
        let staged = stage_into(&owner);
        owner.engine.create_note("staged").await?;
        deliver(&owner, &staged);
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 2);
        let log: Vec<Vec<u8>> = server.records(&ws).into_iter().map(|r| r.bytes).collect();
        assert_eq!(
            log.iter().rev().nth(1),
            Some(&unstaged.bytes),
            "the older edit has the lower seq"
        );
        assert_eq!(
            titles_on_server(&server, &owner).await?,
            ["staged", "unstaged"]
        );
        Ok(())
    })
}

#[test]
fn a_staged_push_with_a_token_another_worker_rotated_retries_with_the_stored_one() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        // Another tab's worker rotates the master token: the old one is revoked on the server.
        crate::sync::rotate(&owner.store, &server, &ws).await?;
        let staged = stage_into(&owner);
        owner.engine.create_note("after rotation").await?;
        deliver(&owner, &staged);
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 1);
        assert_eq!(titles_on_server(&server, &owner).await?, ["after rotation"]);
        assert!(owner.store.pending(&ws).await?.is_empty());
        Ok(())
    })
}

/// The plain Loro bytes of a stored update (sealed in an encrypted notebook).
fn plain(
    tab: &Engine<MemoryStore>,
    update: &PendingUpdate,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(crate::keys::readable(&tab.record(), &update.bytes, None)?.into_owned())
}

/// The peers whose ops a stored update holds.
fn peers_in(
    tab: &Engine<MemoryStore>,
    update: &PendingUpdate,
) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
    let meta = loro::LoroDoc::decode_import_blob_meta(&plain(tab, update)?, false)?;
    Ok(meta.partial_end_vv.keys().copied().collect())
}

#[test]
fn another_tab_shows_an_edit_before_it_is_written_and_an_edit_built_on_it_carries_it_until_it_is_stored(
) -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let b = Rc::new(Engine::open(a.store.clone(), &ws).await?);
        let before = b.snapshot()?;
        // Tab B hears A's preview broadcast before A's write begins.
        let shown = Rc::new(RefCell::new(Vec::new()));
        let (tab, seen) = (b.clone(), shown.clone());
        let ops = a.store.clone();
        a.engine.set_preview(Some(Rc::new(move |update: &[u8]| {
            tab.show_unstored(update);
            let titles: Vec<String> = tab.notes().into_iter().map(|n| n.title).collect();
            let stored = futures::FutureExt::now_or_never(ops.pending(&tab.id()))
                .and_then(Result::ok)
                .map_or(usize::MAX, |p| p.len());
            seen.borrow_mut().push((titles, stored));
        })));
        let pending_before = a.store.pending(&ws).await?.len();
        let note = a.engine.create_note("from A").await?;
        assert_eq!(
            *shown.borrow(),
            [(vec!["from A".to_owned()], pending_before)],
            "B showed the note before A's write"
        );
        let peer_a = a.engine.doc().peer_id();
        // B edits that note before A's `Local` comes: B's update carries A's ops, so it is
        // whole without A's (had A's write failed, nothing B made would wait for it forever).
        b.splice_text(&note, Field::Body, 0, 0, "B was here")
            .await?;
        let carried = b.last_stored_update().ok_or("nothing stored")?;
        assert!(peers_in(&b, &carried)?.contains(&peer_a), "carries A's ops");
        let alone = loro::LoroDoc::new();
        alone.import(&before)?;
        alone.import(&plain(&b, &carried)?)?;
        let notes = shared_schema::model::notes(&alone);
        assert_eq!(notes.len(), 1, "A's note arrives with B's edit alone");
        assert_eq!(notes[0].body, "B was here");
        // Stored now (B's own update holds it): the next edit is B's alone.
        b.splice_text(&note, Field::Body, 0, 0, "!").await?;
        let next = b.last_stored_update().ok_or("nothing stored")?;
        assert_eq!(peers_in(&b, &next)?, [b.doc().peer_id()]);
        // A shown edit whose `Local` came (the same bytes, stored) is not carried either.
        a.engine.create_note("again").await?;
        let again = a.engine.last_stored_update().ok_or("nothing stored")?;
        assert!(
            b.confirm_stored(&again.bytes),
            "shown by the preview, whole"
        );
        b.splice_text(&note, Field::Body, 0, 0, "?").await?;
        let last = b.last_stored_update().ok_or("nothing stored")?;
        assert_eq!(peers_in(&b, &last)?, [b.doc().peer_id()]);
        Ok(())
    })
}

#[test]
fn a_shown_edit_that_loro_cannot_apply_yet_is_carried_once_it_applies() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let b = Engine::open(a.store.clone(), &ws).await?;
        a.engine.set_preview(Some(Rc::new(|_: &[u8]| {})));
        // A makes two edits; B is shown only the second (it builds on the first, which B has
        // not read): Loro keeps it aside, and B's edit made meanwhile cannot depend on it.
        a.engine.create_note("first").await?;
        let first = a.engine.last_stored_update().ok_or("nothing stored")?;
        let note = a.engine.create_note("second").await?;
        let second = a.engine.last_stored_update().ok_or("nothing stored")?;
        b.show_unstored(&second.bytes);
        assert!(b.note(&note).is_none(), "waits for the first");
        b.create_note("from B").await?;
        let mine = b.last_stored_update().ok_or("nothing stored")?;
        assert_eq!(peers_in(&b, &mine)?, [b.doc().peer_id()]);
        // The first arrives (its `Local`); the second applies and is still unconfirmed.
        // Its `Local` now would not let the tab skip reading storage: Loro still waits.
        assert!(!b.confirm_stored(&second.bytes), "not whole yet");
        b.show_unstored(&second.bytes);
        b.import_stored(&first.bytes);
        assert!(b.note(&note).is_some());
        b.splice_text(&note, Field::Body, 0, 0, "B").await?;
        let built = b.last_stored_update().ok_or("nothing stored")?;
        assert!(
            peers_in(&b, &built)?.contains(&a.engine.doc().peer_id()),
            "the edit built on the shown one carries it"
        );
        // Shown and whole: its `Local` leaves nothing to read.
        a.engine.create_note("third").await?;
        let third = a.engine.last_stored_update().ok_or("nothing stored")?;
        b.show_unstored(&third.bytes);
        assert!(b.confirm_stored(&third.bytes));
        Ok(())
    })
}

#[test]
fn an_edit_after_a_staged_one_is_handed_over_under_the_key_the_last_write_reserved() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        let staged = stage_into(&owner);
        owner.engine.create_note("first").await?;
        owner.engine.create_note("second").await?;
        let sent = staged.borrow().clone();
        let [(first, None), (second, Some(after))] = sent.as_slice() else {
            panic!("two edits staged, the second after the first: {sent:?}");
        };
        assert_eq!(after, &first.key);
        // The first write took its key and reserved the next: the second used that one (a
        // write that allocated its own would have taken the one after it).
        let counter = crate::storage::pending_key_counter;
        assert_eq!(counter(&second.key), counter(&first.key).map(|n| n + 1));
        deliver(&owner, &staged);
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 2);
        assert_eq!(
            titles_on_server(&server, &owner).await?,
            ["first", "second"]
        );
        Ok(())
    })
}

#[test]
fn a_reservation_is_dropped_once_another_tab_stored_a_greater_key_and_the_edit_goes_after_it() -> R
{
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        let staged = stage_into(&owner);
        owner.engine.create_note("first").await?;
        deliver(&owner, &staged);
        owner.core.push_round(&ws, &|_, _| {}).await?;
        // Another tab (not staging) stores an edit; this tab hears its `Local` and builds on it.
        let other_tab = Engine::open(owner.store.clone(), &ws).await?;
        other_tab.create_note("other").await?;
        let other = other_tab.last_stored_update().ok_or("nothing stored")?;
        owner.engine.heard_pending(&other.key);
        assert!(owner.engine.import_stored(&other.bytes));
        owner.engine.create_note("on top").await?;
        let (on_top, after) = staged.borrow().last().cloned().ok_or("nothing staged")?;
        assert!(on_top.key > other.key, "sorts after what it may depend on");
        assert_eq!(after.as_deref(), Some(other.key.as_str()));
        // The worker hears the other tab's `Local` (not staged: storage is read), then the
        // staged edit: the server's log has the other tab's edit first.
        assert!(owner.core.stored(&ws, Some(&other.key)));
        deliver(&owner, &staged);
        owner.core.push_round(&ws, &|_, _| {}).await?;
        let log: Vec<Vec<u8>> = server.records(&ws).into_iter().map(|r| r.bytes).collect();
        let at = |bytes: &Vec<u8>| log.iter().position(|b| b == bytes);
        assert!(at(&other.bytes) < at(&on_top.bytes) && at(&other.bytes).is_some());
        Ok(())
    })
}

#[test]
fn a_tab_that_hears_of_a_key_below_what_it_read_reads_storage_below_it_again() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let staged = stage_into(&owner);
        owner.engine.create_note("first").await?;
        // Another tab stores an edit (a greater key than the one this tab reserved), and a
        // third reads storage up to it.
        let other_tab = Engine::open(owner.store.clone(), &ws).await?;
        other_tab.create_note("other").await?;
        let reader = Engine::open(owner.store.clone(), &ws).await?;
        // This tab, not having heard of it, stores its next edit under its reservation: below.
        owner.engine.create_note("late").await?;
        let late = owner.engine.last_stored_update().ok_or("nothing stored")?;
        let other = other_tab.last_stored_update().ok_or("nothing stored")?;
        assert!(
            late.key < other.key,
            "stored after a greater key: {staged:?}"
        );
        let has = |e: &Engine<MemoryStore>, t: &str| e.notes().iter().any(|n| n.title == t);
        reader.refresh().await?;
        assert!(
            !has(&reader, "late"),
            "a read after the greater key skips it"
        );
        // Its `Local` (here without the bytes) names the key: the next read goes below it.
        reader.heard_pending(&late.key);
        reader.refresh().await?;
        assert!(has(&reader, "late") && has(&reader, "other") && has(&reader, "first"));
        Ok(())
    })
}

/// Tab B of the same browser, shown every edit tab A previews.
fn preview_into(a: &Engine<MemoryStore>, b: &Rc<Engine<MemoryStore>>) {
    let tab = b.clone();
    a.set_preview(Some(Rc::new(move |update: &[u8]| {
        tab.show_unstored(update);
    })));
}

fn body(e: &Engine<MemoryStore>, note: &str) -> String {
    e.note(note).map(|n| n.body).unwrap_or_default()
}

#[test]
fn a_tabs_next_edit_is_shown_to_the_other_tabs_while_the_previous_write_is_still_in_flight() -> R {
    use futures::FutureExt;
    block_on(async {
        let store = MemoryStore::new();
        let a = Engine::create(store.clone(), "W").await?;
        let note = a.create_note("n").await?;
        let b = Rc::new(Engine::open(store.clone(), &a.id()).await?);
        preview_into(&a, &b);
        let before = store.pending(&a.id()).await?.len();
        // The first keystroke's write is in flight (held) when the second is typed.
        store.hold_appends(true);
        let mut first = Box::pin(a.splice_text(&note, Field::Body, 0, 0, "a"));
        assert!(first.as_mut().now_or_never().is_none(), "its write is held");
        let mut second = Box::pin(a.splice_text(&note, Field::Body, 1, 1, "b"));
        assert!(second.as_mut().now_or_never().is_none());
        assert_eq!(
            body(&b, &note),
            "ab",
            "B shows both before either is stored"
        );
        assert_eq!(
            store.pending(&a.id()).await?.len(),
            before,
            "neither is stored yet"
        );
        store.hold_appends(false);
        // Stored in the order they were made.
        let (first, second) = futures::future::join(first, second).await;
        first?;
        second?;
        let stored = store.pending(&a.id()).await?;
        assert_eq!(stored.len(), before + 2, "each keystroke, in order");
        let reopened = Engine::open(store.clone(), &a.id()).await?;
        assert_eq!(body(&reopened, &note), "ab");
        Ok(())
    })
}

#[test]
fn an_edit_made_while_the_previous_write_fails_is_not_stored_either_and_says_why() -> R {
    use futures::FutureExt;
    block_on(async {
        let store = MemoryStore::new();
        let a = Engine::create(store.clone(), "W").await?;
        let note = a.create_note("n").await?;
        let b = Rc::new(Engine::open(store.clone(), &a.id()).await?);
        preview_into(&a, &b);
        store.hold_appends(true);
        let mut first = Box::pin(a.splice_text(&note, Field::Body, 0, 0, "a"));
        assert!(first.as_mut().now_or_never().is_none());
        let mut second = Box::pin(a.splice_text(&note, Field::Body, 1, 1, "b"));
        assert!(second.as_mut().now_or_never().is_none());
        // The disk fills before the first write runs.
        store.set_quota_full(true);
        store.hold_appends(false);
        let (failed, dropped) = futures::future::join(first, second).await;
        assert!(
            matches!(
                failed,
                Err(crate::EngineError::Storage(
                    crate::storage::StorageError::QuotaExceeded
                ))
            ),
            "{failed:?}"
        );
        assert!(
            matches!(dropped, Err(crate::EngineError::EarlierEditNotStored(ref why)) if !why.is_empty()),
            "{dropped:?}"
        );
        assert_eq!(body(&a, &note), "", "both rolled back in memory");
        store.set_quota_full(false);
        a.splice_text(&note, Field::Body, 0, 0, "c").await?;
        let reopened = Engine::open(store.clone(), &a.id()).await?;
        assert_eq!(
            body(&reopened, &note),
            "c",
            "nothing of the failed pair was stored"
        );
        Ok(())
    })
}
