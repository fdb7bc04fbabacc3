//! `SqliteStore`: the store contract the browser's IndexedDB store and the in-memory twin pass,
//! and the engine and sync core on a file that outlives the process's store.

#[path = "../../client-wasm/tests/contract/mod.rs"]
mod contract;

use client_native::SqliteStore;
use client_wasm::storage::Store;
use client_wasm::sync::memory::MemoryServer;
use client_wasm::sync::SyncCore;
use client_wasm::Engine;
use futures::executor::block_on;
use shared_schema::model::Field;
use std::path::PathBuf;

type R = Result<(), Box<dyn std::error::Error>>;

const SERVER: &str = "http://hearth.test";

/// A fresh database file path under the system's temp directory (removed by `Drop`).
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("hearth-native-{}.db", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn memory() -> Result<SqliteStore, contract::Failed> {
    SqliteStore::in_memory().map_err(|e| e.to_string())
}

#[test]
fn load_since_returns_only_what_is_new_in_sqlite() -> Result<(), contract::Failed> {
    block_on(contract::load_since_returns_only_what_is_new(&memory()?))
}

#[test]
fn a_merge_replaces_only_an_unread_last_update_in_sqlite() -> Result<(), contract::Failed> {
    block_on(contract::a_merge_replaces_only_an_unread_last_update(
        &memory()?,
    ))
}

#[test]
fn reseal_replaces_only_plain_updates_still_pending_in_sqlite() -> Result<(), contract::Failed> {
    block_on(contract::reseal_replaces_only_plain_updates_still_pending(
        &memory()?,
    ))
}

#[test]
fn a_notebook_on_a_sqlite_file_syncs_with_a_browser_twin_and_reads_back_after_reopening() -> R {
    block_on(async {
        let file = TempFile::new();
        let server = MemoryServer::new();
        // The owner on a file, as the command line will keep it.
        let store = SqliteStore::open(&file.0)?;
        let engine = Engine::create(store.clone(), "Native").await?;
        let ws = engine.id();
        client_wasm::sync::connect(&store, &server, SERVER, &ws).await?;
        engine.refresh().await?;
        let note = engine.create_note("from the terminal").await?;
        engine
            .splice_text(&note, Field::Body, 0, 0, "typed natively")
            .await?;
        let core = SyncCore::new(store.clone(), server.clone());
        core.sync_once(&ws, &|_, _| {}).await?;
        assert!(store.pending(&ws).await?.is_empty(), "everything was sent");
        // A member on the in-memory twin (what the browser tests use) joins with a keyed link.
        let request = shared_schema::api::MintTokenRequest {
            role: shared_schema::Role::Write,
            expires_in: None,
            label: "member".into(),
        };
        let shared = client_wasm::sync::keys::share(&store, &server, &ws, &request).await?;
        let key = shared.key.map(|k| k.to_text());
        let member = client_wasm::storage::MemoryStore::new();
        client_wasm::sync::join(
            &member,
            &server,
            SERVER,
            &ws,
            &shared.minted.token,
            key.as_deref(),
        )
        .await?;
        let member_core = SyncCore::new(member.clone(), server.clone());
        member_core.sync_once(&ws, &|_, _| {}).await?;
        let member_engine = Engine::open(member.clone(), &ws).await?;
        assert_eq!(member_engine.notes(), engine.notes());
        member_engine.create_note("from the browser").await?;
        member_core.sync_once(&ws, &|_, _| {}).await?;
        core.sync_once(&ws, &|_, _| {}).await?;
        engine.refresh().await?;
        assert_eq!(member_engine.notes(), engine.notes());
        assert!(server
            .records(&ws)
            .iter()
            .all(|r| shared_schema::seal::is_sealed(&r.bytes)));
        let notes = engine.notes();
        drop(engine);
        drop(core);
        drop(store);
        // A new process: the file holds the notebook, its keys and its cursor.
        let reopened = SqliteStore::open(&file.0)?;
        let engine = Engine::open(reopened.clone(), &ws).await?;
        assert_eq!(engine.notes(), notes);
        assert!(engine.quarantined().is_empty());
        let record = reopened.get_workspace(&ws).await?.ok_or("record")?;
        assert!(record.keys.is_some() && record.last_pulled_seq > 0);
        Ok(())
    })
}
