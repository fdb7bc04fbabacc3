//! Native tests of the open cache and of a joined workspace's first pull: a huge paste merged
//! with concurrent edits must not be replayed by every open.

use super::tests::Device;
use super::*;
use crate::storage::{OpenCache, Since, Store};
use crate::sync::memory::MemoryServer;
use futures::executor::block_on;
use shared_schema::model::Field;

type R = Result<(), Box<dyn std::error::Error>>;

/// A text of `n` characters, lines of words.
fn paste(n: usize) -> String {
    "a pasted line of text, long enough to matter\n"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

#[test]
fn a_joined_workspace_makes_no_edit_of_its_own_before_its_first_pull() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        a.engine.create_note("From A").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &a.engine.id(), Role::Write).await?;
        // Nothing pulled yet: no migration ops that would be concurrent with A's whole history.
        assert!(b.engine.pending_updates().await?.is_empty());
        assert!(b.engine.doc().oplog_vv().is_empty());
        b.sync().await?;
        assert_eq!(b.engine.notes().len(), 1);
        assert_eq!(
            model::schema_version(&b.engine.doc()),
            model::SCHEMA_VERSION
        );
        assert!(b.engine.pending_updates().await?.is_empty());
        Ok(())
    })
}

#[test]
fn a_huge_paste_received_next_to_a_concurrent_edit_is_cached_for_the_next_open() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let note = a.engine.create_note("Big").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &a.engine.id(), Role::Write).await?;
        b.sync().await?;
        // B edits while A pastes: the two are concurrent.
        b.engine.create_note("B's own").await?;
        b.sync().await?;
        let big = paste(OPEN_CACHE_AFTER_OPS + 1000);
        a.engine.set_text(&note, Field::Body, "", &big).await?;
        a.sync().await?;
        let peer = b.engine.doc().peer_id();
        b.sync().await?;
        // Merged on a fork at the paste's causal past (Loro's fast path), not into B's document:
        // B continues on the fork, under a new peer id.
        assert_ne!(b.engine.doc().peer_id(), peer);
        assert_eq!(b.engine.notes().len(), 2);
        let ws = a.engine.id();
        let cache = b
            .store
            .open_cache(&ws)
            .await?
            .ok_or("no open cache after a huge paste arrived")?;
        // The cache holds what B's engine had: both notes, the paste whole, and says how far
        // into storage that goes (an open reads only what is stored after it).
        assert!(cache.since.received_after > 0);
        let from_cache = LoroDoc::new();
        from_cache.import(&cache.snapshot)?;
        assert_eq!(model::notes(&from_cache).len(), 2);
        // An open starts from it and ends where a full replay ends.
        let opened = Engine::open(b.store.clone(), &ws).await?;
        assert_eq!(opened.notes(), b.engine.notes());
        assert_eq!(opened.note(&note).map(|n| n.body), Some(big.clone()));
        // Typing on top is merged with the cache's content, and survives the next open.
        opened.splice_text(&note, Field::Body, 0, 0, "x").await?;
        let again = Engine::open(b.store.clone(), &ws).await?;
        assert_eq!(again.note(&note).map(|n| n.body.len()), Some(big.len() + 1));
        Ok(())
    })
}

#[test]
fn an_unreadable_open_cache_is_ignored_and_nothing_is_lost() -> R {
    block_on(async {
        let store = crate::storage::MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let note = e.create_note("Kept").await?;
        e.splice_text(&note, Field::Body, 0, 0, "body").await?;
        let garbage = OpenCache {
            since: Since::default(),
            snapshot: b"not a loro snapshot".to_vec(),
        };
        store.save_open_cache(&e.id(), &garbage).await?;
        let opened = Engine::open(store.clone(), &e.id()).await?;
        assert_eq!(opened.note(&note).map(|n| n.body), Some("body".into()));
        // A cache from an older state is only a head start: later edits still apply.
        let older = OpenCache {
            since: Since::default(),
            snapshot: e.snapshot()?,
        };
        store.save_open_cache(&e.id(), &older).await?;
        e.splice_text(&note, Field::Body, 4, 4, " and more").await?;
        let opened = Engine::open(store.clone(), &e.id()).await?;
        assert_eq!(
            opened.note(&note).map(|n| n.body),
            Some("body and more".into())
        );
        // Forgetting the workspace forgets its cache.
        store.delete_workspace(&e.id()).await?;
        store.save_open_cache(&e.id(), &older).await?;
        assert!(store.load(&e.id()).await?.is_none());
        assert!(store.open_cache(&e.id()).await?.is_none());
        Ok(())
    })
}
