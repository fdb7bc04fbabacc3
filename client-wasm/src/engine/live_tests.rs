//! The live path through the sync core: inline records taken without a pull, and every reason to
//! fall back to one (a gap, a tampered record, a large update).

use super::tests::Device;
use crate::storage::Store;
use crate::sync::memory::MemoryServer;
use crate::sync::Live;
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
        let reader = Device::member(&server, &ws, Role::Read).await?;
        reader.sync().await?;
        let seq = edit_and_push(&owner, &note, "live ").await?;
        let pulls = server.pulls();
        let event = server.live_event(&ws, seq).ok_or("no event")?;
        assert!(event.record.is_some(), "a small edit comes inline");
        assert!(matches!(
            reader.core.take_live(&ws, &event).await?,
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
        assert_eq!(reader.core.take_live(&ws, &event).await?, Live::Current);
        let head = LiveEvent { seq, record: None };
        assert_eq!(reader.core.take_live(&ws, &head).await?, Live::Current);
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
        let reader = Device::member(&server, &ws, Role::Read).await?;
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
        assert_eq!(reader.core.take_live(&ws, &event).await?, Live::Pull);
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
        assert_eq!(reader.core.take_live(&ws, &tampered).await?, Live::Pull);
        assert_eq!(cursor().await?, at, "a tampered record is never stored");
        assert!(
            matches!(reader.core.take_live(&ws, &real).await?, Live::Stored(_)),
            "the real one is still next"
        );

        // A large update is announced by seq only: the reader must pull.
        let big = "x".repeat(shared_schema::live::INLINE_MAX + 1);
        let fourth = edit_and_push(&owner, &note, &big).await?;
        let event = server.live_event(&ws, fourth).ok_or("no event")?;
        assert_eq!(event.record, None);
        assert_eq!(reader.core.take_live(&ws, &event).await?, Live::Pull);
        reader.sync().await?;
        let body = reader.engine.note(&note).map(|n| n.body).ok_or("no note")?;
        assert_eq!(body, format!("{big}cba"));
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
        let reader = Device::member(&server, &ws, Role::Read).await?;
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
        assert!(b.import_stored(&update));
        assert_eq!(b.note(&note).map(|n| n.title), Some("from tab A".into()));
        assert_eq!(b.take_changes().notes, [note.clone()].into());
        // The refresh that follows finds it already applied; garbage is refused and changes nothing.
        b.refresh().await?;
        assert!(!b.import_stored(b"not a loro update"));
        assert_eq!(b.notes(), a.notes());
        Ok(())
    })
}
