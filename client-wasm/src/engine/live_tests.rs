//! The live path through the sync core: inline records taken without a pull, and every reason to
//! fall back to one (a gap, a tampered record, a large update).

use super::tests::Device;
use crate::storage::Store;
use crate::sync::memory::MemoryServer;
use crate::sync::{Live, SyncCore};
use futures::executor::block_on;
use shared_schema::api::LiveEvent;
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

#[test]
fn an_inline_record_is_stored_without_a_pull_and_shows_in_the_engine() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("shared").await?;
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let seq = edit_and_push(&owner, &note, "live ").await?;
        let pulls = server.pulls();
        let event = server.live_event(&ws, seq).ok_or("no event")?;
        assert!(event.record.is_some(), "a small edit comes inline");
        assert!(matches!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Stored(bytes) if !bytes.is_empty()
        ));
        assert_eq!(server.pulls(), pulls, "no pull");
        reader.engine.refresh().await?;
        assert_eq!(
            reader.engine.note(&note).map(|n| n.body),
            Some("live ".into())
        );
        let record = reader.store.get_workspace(&ws).await?.ok_or("gone")?;
        assert_eq!(record.last_pulled_seq, seq);
        // The same event again (a second tab's worker, a replay), or the head a new stream
        // announces, is nothing new: no pull either.
        assert_eq!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Current
        );
        let head = LiveEvent { seq, record: None };
        assert_eq!(
            reader.core.take_live(&ws, &head, &|_| {}).await?,
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

        // A gap: the event for the first edit was missed.
        let _missed = edit_and_push(&owner, &note, "a").await?;
        let second = edit_and_push(&owner, &note, "b").await?;
        let event = server.live_event(&ws, second).ok_or("no event")?;
        assert_eq!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Pull
        );
        assert_eq!(cursor().await?, before, "nothing stored past a gap");
        reader.sync().await?;
        assert_eq!(reader.engine.note(&note).map(|n| n.body), Some("ba".into()));

        // A tampered record (bytes changed, chain kept): refused, nothing stored.
        let third = edit_and_push(&owner, &note, "c").await?;
        let real = server.live_event(&ws, third).ok_or("no event")?;
        let log = server.log(&ws).ok_or("no log")?;
        let stored = &log.updates[&third];
        let mut forged = stored.bytes.clone();
        forged[0] ^= 1;
        let tampered = LiveEvent {
            record: shared_schema::live::event(third, &stored.chain, &forged).record,
            ..real.clone()
        };
        let at = cursor().await?;
        let shown = std::cell::Cell::new(0);
        let count = |_: &[u8]| shown.set(shown.get() + 1);
        assert_eq!(
            reader.core.take_live(&ws, &tampered, &count).await?,
            Live::Pull
        );
        assert_eq!(cursor().await?, at, "a tampered record is never stored");
        assert_eq!(shown.get(), 0, "nor shown");
        assert!(
            matches!(
                reader.core.take_live(&ws, &real, &|_| {}).await?,
                Live::Stored(_)
            ),
            "the real one is still next"
        );

        // A large update is announced by seq only: the reader must pull.
        let big = "x".repeat(shared_schema::live::INLINE_MAX + 1);
        let fourth = edit_and_push(&owner, &note, &big).await?;
        let event = server.live_event(&ws, fourth).ok_or("no event")?;
        assert_eq!(event.record, None);
        assert_eq!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Pull
        );
        reader.sync().await?;
        let body = reader.engine.note(&note).map(|n| n.body).ok_or("no note")?;
        assert_eq!(body, format!("{big}cba"));
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
        let event = server.live_event(&ws, first).ok_or("no event")?;
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
        assert!(matches!(
            reader.core.take_live(&ws, &event, &show).await?,
            Live::Stored(_)
        ));
        assert_eq!(seen.borrow().as_slice(), &[(expected, Some(first - 1))]);

        // Another tab's worker (a second core on the same store) stores the next record: this
        // core's cursor in memory is now stale. Its event verifies against that cursor, but the
        // store refuses it (nothing is stored twice) and the caller is told to pull; after that
        // the core reads the stored cursor again and the event is nothing new.
        let other = SyncCore::new(reader.store.clone(), server.clone());
        let second = edit_and_push(&owner, &note, "b").await?;
        let event = server.live_event(&ws, second).ok_or("no event")?;
        assert!(matches!(
            other.take_live(&ws, &event, &|_| {}).await?,
            Live::Stored(_)
        ));
        assert_eq!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Pull
        );
        assert_eq!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Current
        );
        let third = edit_and_push(&owner, &note, "c").await?;
        let event = server.live_event(&ws, third).ok_or("no event")?;
        assert!(matches!(
            reader.core.take_live(&ws, &event, &|_| {}).await?,
            Live::Stored(_)
        ));
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
        let event = server.live_event(&ws, seq).ok_or("no event")?;
        let shown = std::cell::Cell::new(0);
        let count = |_: &[u8]| shown.set(shown.get() + 1);
        assert_eq!(owner.core.take_live(&ws, &event, &count).await?, Live::Echo);
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
        let event = server.live_event(&ws, theirs).ok_or("no event")?;
        assert!(matches!(
            owner.core.take_live(&ws, &event, &count).await?,
            Live::Stored(_)
        ));
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
