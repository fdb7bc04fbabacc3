//! The live path through the sync core: tentative records held and shown, stored without a pull
//! when their marker confirms them, and every reason to fall back to a pull (a gap, a tampered
//! record, a large update, a commit that failed after its records were sent).

use super::tests::Device;
use crate::storage::Store;
use crate::sync::memory::MemoryServer;
use crate::sync::{Live, SyncCore, SyncError, Transport};
use futures::executor::block_on;
use shared_schema::api::LiveEvent;
use shared_schema::live::Held;
use shared_schema::model::Field;
use shared_schema::Role;

type R = Result<(), Box<dyn std::error::Error>>;

/// The owner edits and pushes; returns the seq the server gave the edit.
async fn edit_and_push(
    owner: &Device,
    note: &str,
    text: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    owner
        .engine
        .splice_text(note, Field::Body, 0, 0, text)
        .await?;
    Ok(owner.sync().await?.seq)
}

/// Feeds `events` to `core` as one stream (`held`); the outcome of each.
async fn take_all<S: Store, T: Transport>(
    core: &SyncCore<S, T>,
    ws: &str,
    events: &[LiveEvent],
    held: &mut Held,
    show: &dyn Fn(&[u8]),
) -> Result<Vec<Live>, SyncError> {
    let mut out = Vec::new();
    for e in events {
        out.push(core.take_live(ws, e, held, show).await?);
    }
    Ok(out)
}

#[test]
fn a_tentative_record_is_shown_at_once_and_stored_without_a_pull_when_its_marker_comes() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let before = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        let seq = edit_and_push(&owner, &note, "live ").await?;
        let pulls = server.pulls();
        let events = server.live_events(&ws, seq);
        assert_eq!(
            events.len(),
            2,
            "a small edit comes inline, then its marker"
        );
        assert!(events[0].tentative && events[0].record.is_some());
        let mut held = Held::default();
        let shown = std::cell::RefCell::new(Vec::new());
        let show = |b: &[u8]| shown.borrow_mut().push(b.to_vec());
        assert_eq!(
            reader
                .core
                .take_live(&ws, &events[0], &mut held, &show)
                .await?,
            Live::Held
        );
        assert_eq!(shown.borrow().len(), 1, "shown at once");
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(
            record.last_pulled_seq, before.last_pulled_seq,
            "not stored yet"
        );
        assert!(matches!(
            reader.core.take_live(&ws, &events[1], &mut held, &show).await?,
            Live::Stored(bytes) if bytes == shown.borrow()[0]
        ));
        assert_eq!(server.pulls(), pulls, "no pull");
        reader.engine.refresh().await?;
        assert_eq!(
            reader.engine.note(&note).map(|n| n.body),
            Some("live ".into())
        );
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(record.last_pulled_seq, seq);
        // The same events again (a second tab's worker, a replay), or the head a new stream
        // announces, are nothing new: no pull either.
        let again = take_all(&reader.core, &ws, &events, &mut held, &|_| {}).await?;
        assert_eq!(again, vec![Live::Current, Live::Current]);
        let head = LiveEvent {
            seq,
            ..LiveEvent::default()
        };
        assert_eq!(
            reader
                .core
                .take_live(&ws, &head, &mut held, &|_| {})
                .await?,
            Live::Current
        );
        Ok(())
    })
}

#[test]
fn a_gap_a_tampered_record_and_a_large_update_fall_back_to_a_pull_that_gets_everything() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let cursor = || async {
            Ok::<_, Box<dyn std::error::Error>>(
                reader
                    .store
                    .get_workspace(&ws)
                    .await?
                    .ok_or("gone")?
                    .last_pulled_seq,
            )
        };
        let before = cursor().await?;
        let mut held = Held::default();

        // A gap: the events for the first edit were missed.
        let _missed = edit_and_push(&owner, &note, "a").await?;
        let second = edit_and_push(&owner, &note, "b").await?;
        let events = server.live_events(&ws, second);
        let got = take_all(&reader.core, &ws, &events, &mut held, &|_| {}).await?;
        assert_eq!(got, vec![Live::Current, Live::Pull]);
        assert_eq!(cursor().await?, before, "nothing stored past a gap");
        reader.sync().await?;
        assert_eq!(reader.engine.note(&note).map(|n| n.body), Some("ba".into()));

        // A tampered record (bytes changed, chain kept): not taken, not shown; its marker pulls.
        let third = edit_and_push(&owner, &note, "c").await?;
        let real = server.live_events(&ws, third);
        let log = server.log(&ws).ok_or("no log")?;
        let stored = &log.updates[&third];
        let mut forged = stored.bytes.clone();
        forged[0] ^= 1;
        let tampered =
            shared_schema::live::tentative(third, &stored.chain, &forged).ok_or("small")?;
        let at = cursor().await?;
        let shown = std::cell::Cell::new(0);
        let count = |_: &[u8]| shown.set(shown.get() + 1);
        let got = take_all(
            &reader.core,
            &ws,
            &[tampered, real[1].clone()],
            &mut held,
            &count,
        )
        .await?;
        assert_eq!(got, vec![Live::Current, Live::Pull]);
        assert_eq!(cursor().await?, at, "a tampered record is never stored");
        assert_eq!(shown.get(), 0, "nor shown");
        let got = take_all(&reader.core, &ws, &real, &mut held, &|_| {}).await?;
        assert!(
            matches!(got[..], [Live::Held, Live::Stored(_)]),
            "the real one is still next: {got:?}"
        );

        // A large update comes as its marker only: the reader must pull.
        let big = "x".repeat(shared_schema::live::INLINE_MAX + 1);
        let fourth = edit_and_push(&owner, &note, &big).await?;
        let events = server.live_events(&ws, fourth);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].record, None);
        let got = take_all(&reader.core, &ws, &events, &mut held, &|_| {}).await?;
        assert_eq!(got, vec![Live::Pull]);
        reader.sync().await?;
        let body = reader.engine.note(&note).map(|n| n.body).ok_or("no note")?;
        assert_eq!(body, format!("{big}cba"));
        Ok(())
    })
}

#[test]
fn a_record_sent_before_a_commit_that_failed_is_never_stored_and_no_fork_is_reported() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        let (at, chain) = (record.last_pulled_seq, record.chain_head);
        // The server sent seq at+1 tentatively, then crashed before its commit was durable.
        let lost = b"an update the server never stored".to_vec();
        let lost =
            shared_schema::live::tentative(at + 1, &chain.next(&lost), &lost).ok_or("small")?;
        let mut held = Held::default();
        let shown = std::cell::Cell::new(0);
        let count = |_: &[u8]| shown.set(shown.get() + 1);
        assert_eq!(
            reader.core.take_live(&ws, &lost, &mut held, &count).await?,
            Live::Held
        );
        assert_eq!(shown.get(), 1, "it was shown");
        // After the restart, seq at+1 is another update; its marker does not confirm the held one.
        let seq = edit_and_push(&owner, &note, "real").await?;
        assert_eq!(seq, at + 1);
        let marker = server.live_events(&ws, seq).pop().ok_or("no marker")?;
        assert_eq!(
            reader
                .core
                .take_live(&ws, &marker, &mut held, &count)
                .await?,
            Live::Pull
        );
        assert!(held.is_empty());
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(
            record.last_pulled_seq, at,
            "the lost record was never stored"
        );
        reader.sync().await?;
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(record.forked, None, "no fork reported");
        assert_eq!(record.last_pulled_seq, seq);
        assert_eq!(
            reader.engine.note(&note).map(|n| n.body),
            Some("real".into())
        );
        Ok(())
    })
}

#[test]
fn a_verified_record_is_shown_before_it_is_stored_and_a_stale_cursor_in_memory_makes_a_pull() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let first = edit_and_push(&owner, &note, "a").await?;
        let events = server.live_events(&ws, first);
        let expected = server.log(&ws).ok_or("no log")?.updates[&first]
            .bytes
            .clone();
        // The callback runs before the store: the cursor has not moved yet when it does.
        let seen = std::cell::RefCell::new(Vec::new());
        let store = reader.store.clone();
        let show = |bytes: &[u8]| {
            // The in-memory store answers at once.
            let cursor = futures::FutureExt::now_or_never(store.get_workspace(&ws))
                .and_then(Result::ok)
                .flatten()
                .map(|r| r.last_pulled_seq);
            seen.borrow_mut().push((bytes.to_vec(), cursor));
        };
        let mut held = Held::default();
        let got = take_all(&reader.core, &ws, &events, &mut held, &show).await?;
        assert!(matches!(got[..], [Live::Held, Live::Stored(_)]));
        assert_eq!(seen.borrow().as_slice(), &[(expected, Some(first - 1))]);

        // Another tab's worker (a second core on the same store, its own stream) stores the next
        // record: this core's cursor in memory is now stale. The record verifies against that
        // cursor, but the store refuses it (nothing is stored twice) and the caller is told to
        // pull; after that the core reads the stored cursor again and the marker is nothing new.
        let other = SyncCore::new(reader.store.clone(), server.clone());
        let second = edit_and_push(&owner, &note, "b").await?;
        let events = server.live_events(&ws, second);
        let got = take_all(&other, &ws, &events, &mut Held::default(), &|_| {}).await?;
        assert!(matches!(got[..], [Live::Held, Live::Stored(_)]));
        let got = take_all(&reader.core, &ws, &events, &mut held, &|_| {}).await?;
        assert_eq!(got, vec![Live::Held, Live::Pull]);
        assert_eq!(
            reader
                .core
                .take_live(&ws, &events[1], &mut held, &|_| {})
                .await?,
            Live::Current
        );
        let third = edit_and_push(&owner, &note, "c").await?;
        let events = server.live_events(&ws, third);
        let got = take_all(&reader.core, &ws, &events, &mut held, &|_| {}).await?;
        assert!(matches!(got[..], [Live::Held, Live::Stored(_)]));
        reader.engine.refresh().await?;
        assert_eq!(
            reader.engine.note(&note).map(|n| n.body),
            Some("cba".into())
        );
        Ok(())
    })
}

#[test]
fn a_device_s_own_update_coming_back_live_is_stored_as_an_echo_without_being_shown_again() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        owner
            .engine
            .splice_text(&note, Field::Body, 0, 0, "mine")
            .await?;
        let round = owner.core.push_round(&ws, &|_, _| {}).await?;
        assert_eq!(round.pushed, 1);
        let pulls = server.pulls();
        let seq = server.log(&ws).ok_or("no log")?.head;
        let events = server.live_events(&ws, seq);
        let shown = std::cell::Cell::new(0);
        let count = |_: &[u8]| shown.set(shown.get() + 1);
        let mut held = Held::default();
        let got = take_all(&owner.core, &ws, &events, &mut held, &count).await?;
        assert_eq!(got, vec![Live::Held, Live::Echo]);
        assert_eq!(shown.get(), 0, "its tabs made it: nothing to show");
        assert_eq!(server.pulls(), pulls, "a push round does not pull");
        let record = owner.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(record.last_pulled_seq, seq, "the cursor moved past it");

        // Someone else's update is shown as usual.
        let writer = Device::member(&server, &owner.store, &ws, Role::Write).await?;
        writer.sync().await?;
        owner.sync().await?;
        writer
            .engine
            .splice_text(&note, Field::Body, 0, 0, "theirs ")
            .await?;
        let theirs = writer.sync().await?.seq;
        let events = server.live_events(&ws, theirs);
        let got = take_all(&owner.core, &ws, &events, &mut held, &count).await?;
        assert!(matches!(got[..], [Live::Held, Live::Stored(_)]));
        assert_eq!(shown.get(), 1);
        owner.engine.refresh().await?;
        assert_eq!(
            owner.engine.note(&note).map(|n| n.body),
            Some("theirs mine".into())
        );
        Ok(())
    })
}

#[test]
fn a_refresh_after_one_remote_edit_says_only_that_note_changed() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let mut notes = Vec::new();
        for i in 0..30 {
            notes.push(owner.engine.create_note(&format!("note {i}")).await?);
        }
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        assert!(
            reader.engine.take_changes().all,
            "a freshly opened engine says everything changed"
        );
        assert!(reader.engine.take_changes().is_empty());
        edit_and_push(&owner, &notes[7], "typed ").await?;
        reader.sync().await?;
        let changes = reader.engine.take_changes();
        assert_eq!(changes.notes, [notes[7].clone()].into());
        assert!(!changes.all && !changes.meta);
        // The owner's own edit is reported on its engine too (the local tab re-renders one note).
        owner.engine.take_changes();
        owner.engine.set_pinned(&notes[3], true).await?;
        assert_eq!(owner.engine.take_changes().notes, [notes[3].clone()].into());
        Ok(())
    })
}

#[test]
fn a_tab_shows_another_tabs_broadcast_update_before_reading_storage() -> R {
    block_on(async {
        let store = crate::storage::MemoryStore::new();
        let a = crate::Engine::create(store.clone(), "W").await?;
        let b = crate::Engine::open(store.clone(), &a.id()).await?;
        let note = a.create_note("from tab A").await?;
        let update = a.last_stored_update().ok_or("the edit stored nothing")?;
        assert!(b.note(&note).is_none());
        assert!(b.import_stored(&update.bytes));
        assert_eq!(b.note(&note).map(|n| n.title), Some("from tab A".into()));
        assert_eq!(b.take_changes().notes, [note.clone()].into());
        // The refresh that follows finds it already applied; garbage is refused and changes nothing.
        b.refresh().await?;
        assert!(!b.import_stored(b"not a loro update"));
        assert_eq!(b.notes(), a.notes());
        Ok(())
    })
}

#[test]
fn a_tab_holds_the_log_through_held_records_it_showed_in_an_unbroken_run_and_not_past_a_gap() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        // Two tabs' engines (two members here): one hears every live record, one misses the
        // first (it opened after it was shown).
        let tab = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        tab.sync().await?;
        let late = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        late.sync().await?;
        let base = tab
            .store
            .get_workspace(&ws)
            .await?
            .ok_or("gone")?
            .last_pulled_seq;
        assert!(tab.engine.holds_through(base), "what it read");
        assert!(!tab.engine.holds_through(base + 1));
        let first = edit_and_push(&owner, &note, "one ").await?;
        let second = edit_and_push(&owner, &note, "two ").await?;
        assert_eq!((first, second), (base + 1, base + 2));
        // What the tab's worker shows of each tentative record (their markers not taken: nothing
        // stored yet).
        let shown = std::cell::RefCell::new(Vec::new());
        let show = |b: &[u8]| shown.borrow_mut().push(b.to_vec());
        let mut held = Held::default();
        for seq in [first, second] {
            let tentative = server
                .live_events(&ws, seq)
                .into_iter()
                .next()
                .ok_or("no event")?;
            assert_eq!(
                tab.core
                    .take_live(&ws, &tentative, &mut held, &show)
                    .await?,
                Live::Held
            );
        }
        let [one, two] = <[Vec<u8>; 2]>::try_from(shown.take()).map_err(|_| "two shown")?;
        assert!(tab.engine.show_held(first, &one));
        assert!(tab.engine.holds_through(first));
        assert!(tab.engine.show_held(second, &two));
        assert!(tab.engine.holds_through(second), "an unbroken run");
        assert_eq!(
            tab.engine.note(&note).map(|n| n.body),
            Some("two one ".into())
        );
        // The late tab shows only the second: Loro keeps it aside, and the log is not held.
        assert!(late.engine.show_held(second, &two));
        assert!(!late.engine.holds_through(second), "a gap before it");
        assert!(!late.engine.holds_through(first));
        // Its read of storage (after the worker stored both) is what catches it up.
        late.sync().await?;
        assert!(late.engine.holds_through(second));
        assert_eq!(
            late.engine.note(&note).map(|n| n.body),
            Some("two one ".into())
        );
        Ok(())
    })
}
