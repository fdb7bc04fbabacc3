//! End-to-end encryption through the engine and the sync core: what the server stores is
//! sealed, a link's key opens it, and every record that does not open is quarantined while the
//! rest applies.

use super::tests::{invite, push_raw, Device, SERVER};
use crate::storage::{MemoryStore, Store};
use crate::sync::memory::MemoryServer;
use futures::executor::block_on;
use loro::{ExportMode, LoroDoc};
use shared_schema::model::Field;
use shared_schema::seal::{self, EpochKey, Secret, Witness};
use shared_schema::{Chain, Role};

type R = Result<(), Box<dyn std::error::Error>>;

const MARKER: &str = "marker-5e2b9c sealed text";

#[test]
fn what_the_server_stores_is_sealed_and_only_a_link_with_its_key_reads_it() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let note = a.engine.create_note(MARKER).await?;
        a.engine
            .splice_text(&note, Field::Body, 0, 0, MARKER)
            .await?;
        a.sync().await?;
        let stored = server.records(&ws);
        assert!(!stored.is_empty());
        for r in &stored {
            assert!(seal::is_sealed(&r.bytes), "seq {} is not sealed", r.seq);
            assert!(!r.bytes.windows(6).any(|w| w == b"marker"));
        }
        // A member with the whole link reads everything.
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        assert_eq!(b.engine.notes(), a.engine.notes());
        // Its own edits are sealed too, and the owner reads them.
        b.engine.create_note("from b").await?;
        b.sync().await?;
        a.sync().await?;
        assert_eq!(b.engine.notes(), a.engine.notes());
        assert!(server
            .records(&ws)
            .iter()
            .all(|r| seal::is_sealed(&r.bytes)));
        // A link without its key, or with another link's key, stores nothing.
        let fresh = MemoryStore::new();
        let (token, key) = invite(&server, &a.store, &ws, Role::Read).await?;
        let (_, other_key) = invite(&server, &a.store, &ws, Role::Read).await?;
        let damaged = "x".repeat(43);
        for key in [
            None,
            other_key.as_deref(),
            Some("short"),
            Some(damaged.as_str()),
        ] {
            let joined = crate::sync::join(&fresh, &server, SERVER, &ws, &token, key).await;
            assert!(
                matches!(joined, Err(crate::sync::SyncError::BadLink(_))),
                "{key:?}: {joined:?}"
            );
        }
        assert!(fresh.list_workspaces().await?.is_empty());
        crate::sync::join(&fresh, &server, SERVER, &ws, &token, key.as_deref()).await?;
        assert!(fresh.get_workspace(&ws).await?.is_some());
        Ok(())
    })
}

#[test]
fn records_that_do_not_open_are_quarantined_and_the_rest_applies() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("first").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        // What a hostile member (a write token, no key) or the server could put in the log.
        let record = a.engine.record();
        let update = {
            let doc = LoroDoc::new();
            doc.get_map("x").insert("k", 1)?;
            doc.commit();
            doc.export(ExportMode::all_updates())?
        };
        let mut tampered = crate::keys::sealed(&record, update.clone())?;
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let wrong_key = EpochKey {
            epoch: 1,
            key: Secret::from_bytes([9; 32]),
        };
        let witness = Witness::new(0, &Chain::genesis());
        let wrong = seal::seal(&ws, &wrong_key, witness, [1; 16], &update);
        let future = EpochKey {
            epoch: 7,
            key: Secret::from_bytes([9; 32]),
        };
        let unknown = seal::seal(&ws, &future, witness, [2; 16], &update);
        let hostile = server.mint(&ws, Role::Write);
        push_raw(
            &server,
            &ws,
            &hostile,
            &[
                ("tampered", &tampered),
                ("wrong-key", &wrong),
                ("unknown-epoch", &unknown),
                ("plain", &update),
            ],
        )
        .await?;
        a.engine.create_note("after").await?;
        a.sync().await?;
        b.sync().await?;
        assert_eq!(b.engine.quarantined().len(), 4);
        assert_eq!(b.engine.notes(), a.engine.notes());
        assert_eq!(a.engine.quarantined().len(), 4);
        // Reopening keeps them out and still reads the rest.
        let reopened = crate::Engine::open(b.store.clone(), &ws).await?;
        assert_eq!(reopened.notes(), a.engine.notes());
        Ok(())
    })
}

#[test]
fn a_servers_backup_restores_only_where_the_notebooks_keys_are() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note(MARKER).await?;
        a.sync().await?;
        let records = server.records(&ws);
        let last = records.last().ok_or("nothing on the server")?;
        let header = shared_schema::backup::BackupHeader {
            workspace_id: ws.clone(),
            created_at: 0,
            head_seq: last.seq,
            chain_head: last.chain,
            source: "server".into(),
            keys: None,
        };
        let file = shared_schema::backup::encode(&header, &records)?;
        assert!(!file.windows(6).any(|w| w == b"marker"));
        // Elsewhere: refused, nothing stored.
        let fresh = MemoryStore::new();
        assert!(matches!(
            crate::Engine::import_backup(fresh.clone(), &file, None).await,
            Err(crate::EngineError::SealedBackup)
        ));
        assert!(fresh.list_workspaces().await?.is_empty());
        // In the browser that has the notebook: a new notebook with the same notes, sealed
        // under keys of its own.
        let restored = crate::Engine::import_backup(a.store.clone(), &file, None).await?;
        assert_eq!(restored.notes(), a.engine.notes());
        assert_ne!(restored.record().keys, a.engine.record().keys);
        let pending = a.store.pending(&restored.id()).await?;
        assert!(pending.iter().all(|p| seal::is_sealed(&p.bytes)));
        Ok(())
    })
}

#[test]
fn a_revoked_member_with_every_old_key_reads_nothing_written_after_and_the_others_switch_keys() -> R
{
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("before the revocation").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        let c = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        c.sync().await?;
        let b_record = b.store.get_workspace(&ws).await?.ok_or("b")?;
        let b_ring = b_record.keys.clone().ok_or("b has keys")?;
        let b_token = b_record.token.clone().ok_or("b token")?;
        let c_token = c
            .store
            .get_workspace(&ws)
            .await?
            .ok_or("c")?
            .token
            .ok_or("c token")?;
        let head_before = server.records(&ws).last().map_or(0, |r| r.seq);

        let epoch = crate::sync::keys::revoke(&a.store, &server, &ws, &b_token).await?;
        assert_eq!(epoch, Some(2));
        a.engine.refresh().await?;
        a.engine.create_note(MARKER).await?;
        a.sync().await?;

        // The remaining member switches epochs with no action.
        c.sync().await?;
        assert_eq!(c.engine.notes(), a.engine.notes());
        assert!(c.engine.quarantined().is_empty());
        // What was written after is under epoch 2, which the revoked member's keys do not open.
        let after: Vec<_> = server
            .records(&ws)
            .into_iter()
            .filter(|r| r.seq > head_before)
            .collect();
        assert!(!after.is_empty());
        for r in &after {
            assert_eq!(seal::epoch_of(&r.bytes), Some(2));
            assert_eq!(
                seal::open(&ws, &b_ring, &r.bytes),
                Err(seal::SealError::UnknownEpoch { epoch: 2 })
            );
        }
        // The server refuses its token; another member's token it got hold of gives wrapped keys
        // its own link secret does not open.
        assert!(b.sync().await.is_err());
        let stolen = crate::sync::Remote {
            server_url: SERVER.into(),
            ws: ws.clone(),
            token: c_token,
        };
        let info = crate::sync::Transport::join(&server, &stolen).await?;
        assert!(info.keys.iter().any(|k| k.epoch == 2));
        assert!(crate::sync::keys::learn(&ws, &info, b_ring.link_secret.clone()).is_err());
        // A link made after the rotation reads everything, old epoch and new.
        let d = Device::member(&server, &a.store, &ws, Role::Read).await?;
        d.sync().await?;
        assert_eq!(d.engine.notes(), a.engine.notes());
        Ok(())
    })
}

#[test]
fn a_server_that_forks_two_members_is_caught_by_both_once_an_update_crosses_the_fork() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("start").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        let b_token = b
            .store
            .get_workspace(&ws)
            .await?
            .ok_or("b")?
            .token
            .ok_or("token")?;
        // Every view verifies on its own: syncing goes on as usual until a witness crosses.
        server.fork_for(&b_token);
        a.engine
            .create_note("only the owner's view has this")
            .await?;
        a.sync().await?;
        b.sync().await?;
        b.engine.create_note("from b, in b's view").await?;
        a.engine.create_note("from a, in a's view").await?;
        b.sync().await?;
        a.sync().await?;
        b.sync().await?;
        for (who, d) in [("owner", &a), ("member", &b)] {
            let record = d.store.get_workspace(&ws).await?.ok_or("record")?;
            assert!(record.forked.is_some(), "the {who} saw the fork");
            assert_eq!(
                d.engine.record().forked,
                record.forked,
                "the {who}'s tab knows"
            );
            let stopped = d.core.sync_once(&ws, &|_, _| {}).await;
            assert_eq!(
                stopped.err().and_then(|e| e.stop_reason()),
                Some(shared_schema::sync::StopReason::ServerFork),
                "the {who} stops"
            );
        }
        Ok(())
    })
}

#[test]
fn a_backup_with_its_keys_restores_on_a_fresh_device_only_with_its_passphrase() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let engine = crate::Engine::create(store.clone(), "W").await?;
        engine.create_note(MARKER).await?;
        let file = engine.export_backup_as(Some("correct horse"))?;
        assert!(
            !file.windows(6).any(|w| w == b"marker"),
            "the file holds no plaintext"
        );
        let fresh = MemoryStore::new();
        assert!(matches!(
            crate::Engine::import_backup(fresh.clone(), &file, None).await,
            Err(crate::EngineError::PassphraseNeeded)
        ));
        assert!(matches!(
            crate::Engine::import_backup_with(fresh.clone(), &file, None, Some("wrong horse"))
                .await,
            Err(crate::EngineError::Seal(seal::SealError::WrongPassphrase))
        ));
        assert!(
            fresh.list_workspaces().await?.is_empty(),
            "a refused restore stores nothing"
        );
        let restored =
            crate::Engine::import_backup_with(fresh.clone(), &file, None, Some("correct horse"))
                .await?;
        assert_eq!(restored.notes(), engine.notes());
        Ok(())
    })
}

/// A notebook from before encryption: no keys, its updates plain on the server.
async fn plain_owner(server: &MemoryServer) -> Result<Device, Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let ws = uuid::Uuid::new_v4().to_string();
    store
        .create_workspace(&crate::storage::WorkspaceRecord::new_local(&ws, "Old"))
        .await?;
    let engine = crate::Engine::open(store.clone(), &ws).await?;
    crate::sync::connect(&store, server, SERVER, &ws).await?;
    engine.refresh().await?;
    Ok(Device {
        core: crate::sync::SyncCore::new(store.clone(), server.clone()),
        store,
        engine,
    })
}

#[test]
fn turning_encryption_on_keeps_the_plain_past_seals_everything_after_and_loses_no_edit() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = plain_owner(&server).await?;
        let ws = a.engine.id();
        let old = a.engine.create_note("written in the clear").await?;
        a.sync().await?;
        assert!(server
            .records(&ws)
            .iter()
            .all(|r| !seal::is_sealed(&r.bytes)));
        // A member on a plain link (no key), in step.
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        assert_eq!(b.engine.notes(), a.engine.notes());
        // Typed before encryption is turned on, not sent yet.
        a.engine
            .splice_text(&old, Field::Body, 0, 0, "typed just before")
            .await?;

        let done = crate::sync::keys::encrypt(&a.core, &ws).await?;
        assert_eq!((done.revoked, done.turned_on), (1, true));
        let again = crate::sync::keys::encrypt(&a.core, &ws).await?;
        assert!(!again.turned_on, "one-way and idempotent");
        // What was typed before went out in the clear with the past; the cursor is the head.
        let head_before = server.records(&ws).last().map_or(0, |r| r.seq);
        let ring = a.store.get_workspace(&ws).await?.ok_or("a")?.keys;
        assert_eq!(
            ring.as_ref().and_then(|r| r.plain_through),
            Some(head_before)
        );
        // Typed in the moment the key was stored, before the page re-read the record: the page
        // seals it before the worker may send it, and the snapshot it uploads is sealed too.
        a.engine
            .splice_text(&old, Field::Body, 0, 0, "typed during the switch ")
            .await?;
        assert!(!a.store.pending(&ws).await?.is_empty());
        let sent = a.core.push(&ws, &|_, _| {}).await?;
        assert_eq!(
            sent, 0,
            "a plain update of a notebook with keys is never sent"
        );
        a.engine.refresh().await?;
        assert!(a
            .store
            .pending(&ws)
            .await?
            .iter()
            .all(|p| seal::is_sealed(&p.bytes)));
        a.engine.compact().await?;
        a.engine.create_note(MARKER).await?;
        a.sync().await?;
        let after: Vec<_> = server
            .records(&ws)
            .into_iter()
            .filter(|r| r.seq > head_before)
            .collect();
        assert!(!after.is_empty());
        for r in &after {
            assert!(seal::is_sealed(&r.bytes), "seq {} in the clear", r.seq);
            assert!(!r.bytes.windows(6).any(|w| w == b"marker"));
        }
        // Reopened, the owner's device reads its plain past and the sealed present.
        let reopened = crate::Engine::open(a.store.clone(), &ws).await?;
        assert_eq!(reopened.notes(), a.engine.notes());
        assert!(reopened.quarantined().is_empty());

        // The plain link was revoked: B stops, and what it types meanwhile stays on B.
        assert!(b.sync().await.is_err());
        b.engine.create_note("typed by b while revoked").await?;
        // B opens the new link the owner sent, on the same device: it learns the key, its
        // unsent edit is sealed, and nothing is lost either way.
        let (token, key) = super::tests::invite(&server, &a.store, &ws, Role::Write).await?;
        assert!(key.is_some());
        crate::sync::join(&b.store, &server, SERVER, &ws, &token, key.as_deref()).await?;
        b.engine.refresh().await?;
        b.sync().await?;
        a.sync().await?;
        b.sync().await?;
        assert_eq!(b.engine.notes(), a.engine.notes());
        assert!(a
            .engine
            .notes()
            .iter()
            .any(|n| n.title == "typed by b while revoked"));
        assert!(b.engine.quarantined().is_empty() && a.engine.quarantined().is_empty());
        assert!(server
            .records(&ws)
            .iter()
            .filter(|r| r.seq > head_before)
            .all(|r| seal::is_sealed(&r.bytes)));
        // A new member reads it all from the sealed snapshot on.
        let c = Device::member(&server, &a.store, &ws, Role::Read).await?;
        c.sync().await?;
        assert_eq!(c.engine.notes(), a.engine.notes());
        assert!(c.engine.quarantined().is_empty());
        // A plain record the server slips in after the switch is refused, the rest applies.
        let update = {
            let doc = LoroDoc::new();
            doc.get_map("x").insert("k", 1)?;
            doc.commit();
            doc.export(ExportMode::all_updates())?
        };
        let owner_token = a.engine.record().token.ok_or("owner token")?;
        push_raw(&server, &ws, &owner_token, &[("injected-plain", &update)]).await?;
        let injected = server.records(&ws).last().map_or(0, |r| r.seq);
        c.sync().await?;
        assert_eq!(c.engine.quarantined(), vec![injected]);
        Ok(())
    })
}

#[test]
fn a_witness_naming_a_seq_its_record_could_not_follow_is_a_fork() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("start").await?;
        a.sync().await?;
        let record = a.engine.record();
        let key = record
            .keys
            .as_ref()
            .and_then(|r| r.current())
            .ok_or("key")?
            .clone();
        let head = server.records(&ws).last().map_or(0, |r| r.seq);
        // An update whose author says it had pulled past the seq the server then gave it: the
        // server showed its author a longer log than it shows this device.
        let update = {
            let doc = LoroDoc::new();
            doc.get_map("x").insert("k", 1)?;
            doc.commit();
            doc.export(ExportMode::all_updates())?
        };
        let witness = Witness::new(head + 5, &Chain::genesis().next(b"elsewhere"));
        let forged = seal::seal(&ws, &key, witness, [4; 16], &update);
        let token = record.token.clone().ok_or("token")?;
        push_raw(&server, &ws, &token, &[("from-a-longer-log", &forged)]).await?;
        a.sync().await?;
        assert_eq!(a.engine.record().forked, Some(head + 1));
        Ok(())
    })
}
