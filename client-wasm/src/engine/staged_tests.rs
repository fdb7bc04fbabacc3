//! Staged edits: the engine hands each edit's pending update to the sync core while its write
//! commits, and the core pushes it without reading storage — but never ahead of an unsent edit
//! storage holds, never with a token another worker has replaced, and never merged into.

use super::tests::Device;
use super::Engine;
use crate::storage::{PendingUpdate, Store};
use crate::sync::memory::MemoryServer;
use futures::executor::block_on;
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
