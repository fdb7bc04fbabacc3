//! Native tests of History's sessions: edits grouped per note and per peer, and what a session
//! changed in its note.

use super::tests::Device;
use super::*;
use crate::storage::MemoryStore;
use crate::sync::memory::MemoryServer;
use futures::executor::block_on;
use shared_schema::model::Field;

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn edits_group_into_one_session_per_note_and_say_what_they_changed() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "W").await?;
        let a = e.create_note("Groceries").await?;
        for (i, c) in "milk".chars().enumerate() {
            e.splice_text(&a, Field::Body, i, i, &c.to_string()).await?;
        }
        e.set_tag(&a, "home", true).await?;
        let b = e.create_note("Work").await?;
        e.add_task(&b, "call Ann").await?;
        e.splice_text(&a, Field::Body, 0, 4, "eggs").await?;
        let sessions = e.sessions();
        let notes: Vec<Option<&str>> = sessions.iter().map(|s| s.note.as_deref()).collect();
        // Newest first: a's last edit, b's two edits, a's first six; then the notebook itself.
        assert_eq!(
            &notes[..3],
            &[Some(a.as_str()), Some(b.as_str()), Some(a.as_str())]
        );
        assert!(notes[3..].iter().all(Option::is_none), "{notes:?}");
        assert_eq!(sessions[1].versions.len(), 2);
        assert_eq!(sessions[2].versions.len(), 6);
        assert!(sessions.iter().all(|s| s.peer == e.doc().peer_id()));
        let first = e.session_change(&sessions[2])?.ok_or("a note session")?;
        assert!(first.created);
        assert_eq!((first.body_added, first.body_removed), (4, 0));
        assert_eq!(first.tags_added, vec!["home".to_string()]);
        let last = e.session_change(&sessions[0])?.ok_or("a note session")?;
        assert!(!last.created);
        assert_eq!((last.body_added, last.body_removed), (4, 4));
        assert_eq!(last.after.map(|n| n.body), Some("eggs".into()));
        let tasks = e.session_change(&sessions[1])?.ok_or("a note session")?;
        assert_eq!(tasks.tasks, (0, 1));
        Ok(())
    })
}

#[test]
fn another_devices_edits_of_the_same_note_are_a_session_of_their_own() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let note = a.engine.create_note("Shared").await?;
        a.engine
            .splice_text(&note, Field::Body, 0, 0, "from A")
            .await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &a.engine.id(), Role::Write).await?;
        b.sync().await?;
        b.engine
            .splice_text(&note, Field::Body, 0, 0, "B: ")
            .await?;
        b.sync().await?;
        a.sync().await?;
        let sessions = a.engine.sessions();
        assert_eq!(sessions[0].note.as_deref(), Some(note.as_str()));
        assert!(
            !a.engine.own_peers().contains(&sessions[0].peer),
            "B's edit is not A's"
        );
        assert_eq!(sessions[1].note.as_deref(), Some(note.as_str()));
        assert!(a.engine.own_peers().contains(&sessions[1].peer));
        // B's session started from A's text (its `before` is a real version) and added 3 chars.
        let change = a
            .engine
            .session_change(&sessions[0])?
            .ok_or("a note session")?;
        assert_eq!((change.body_added, change.body_removed), (3, 0));
        assert_eq!(change.after.map(|n| n.body), Some("B: from A".into()));
        Ok(())
    })
}

#[test]
fn an_edit_made_at_an_old_version_keeps_what_was_typed_since_and_is_stored() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let n = e.create_note("Plan").await?;
        e.splice_text(&n, Field::Body, 0, 0, "first paragraph\n\nsecond paragraph")
            .await?;
        e.add_task(&n, "call").await?;
        let old = e.version();
        let exported = e.note(&n).ok_or("note")?;
        // Typed since (as another device would have): the end of the second paragraph.
        let end = exported.body.chars().count();
        e.splice_text(&n, Field::Body, end, end, ", typed later")
            .await?;
        // The old copy's edits: the first paragraph, the task done, a tag.
        let mut wanted = exported.clone();
        wanted.body = wanted.body.replace("first", "FIRST, edited");
        wanted.tasks[0].done = true;
        wanted.tags = vec!["plans".into()];
        let changed = e
            .edit_at(&old, "import", |d, now| {
                model::update_note(d, &wanted, now).map(|c| (c, c))
            })
            .await?;
        assert!(changed);
        let merged = "FIRST, edited paragraph\n\nsecond paragraph, typed later";
        let now = e.note(&n).ok_or("note")?;
        assert_eq!(now.body, merged);
        assert!(now.tasks[0].done);
        assert_eq!(now.tags, ["plans"]);
        // Nothing to do the second time: nothing stored.
        let pending = e.pending_updates().await?.len();
        let again = e
            .edit_at(&e.version(), "import", |d, now| {
                model::update_note(d, &model::note(d, &n).unwrap_or(wanted.clone()), now)
                    .map(|c| (c, c))
            })
            .await?;
        assert!(!again);
        assert_eq!(e.pending_updates().await?.len(), pending);
        // Durable: a new session reads it from storage.
        let reopened = Engine::open(store, &e.id()).await?;
        assert_eq!(reopened.note(&n).ok_or("note")?.body, merged);
        assert!(matches!(
            e.edit_at("99@12345", "x", |_, _| Ok(((), true))).await,
            Err(EngineError::UnknownVersion(_))
        ));
        Ok(())
    })
}
