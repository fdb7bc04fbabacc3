//! Browser tests: the engine on real IndexedDB in headless Chromium (`wasm-bindgen-test`).
#![cfg(target_arch = "wasm32")]

use client_wasm::storage::{
    Change, Compaction, IdbStore, Page, RemoteRecord, Store, Updated, WorkspaceRecord,
};
use client_wasm::{Engine, EngineError};
use shared_schema::frame::PullRecordKind;
use shared_schema::model::Field;
use shared_schema::Chain;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod contract;

#[wasm_bindgen_test]
async fn load_since_returns_only_what_is_new_in_indexeddb() -> Result<(), contract::Failed> {
    let store = fresh("hearth-test-since")
        .await
        .map_err(|e| e.to_string())?;
    contract::load_since_returns_only_what_is_new(&store).await
}

#[wasm_bindgen_test]
async fn a_merge_replaces_only_an_unread_last_update_in_indexeddb() -> Result<(), contract::Failed>
{
    let store = fresh("hearth-test-merge")
        .await
        .map_err(|e| e.to_string())?;
    contract::a_merge_replaces_only_an_unread_last_update(&store).await
}

#[wasm_bindgen_test]
async fn reseal_replaces_only_plain_updates_still_pending_in_indexeddb(
) -> Result<(), contract::Failed> {
    let store = fresh("hearth-test-reseal")
        .await
        .map_err(|e| e.to_string())?;
    contract::reseal_replaces_only_plain_updates_still_pending(&store).await
}

type R = Result<(), EngineError>;

async fn fresh(name: &str) -> Result<IdbStore, EngineError> {
    IdbStore::delete_database(name).await?;
    Ok(IdbStore::open(name).await?)
}

fn record(id: &str) -> WorkspaceRecord {
    WorkspaceRecord::new_local(id, "t")
}

#[wasm_bindgen_test]
async fn bytes_written_to_indexeddb_are_read_back_after_reopening() -> R {
    let store = fresh("hearth-test-bytes").await?;
    assert!(store.create_workspace(&record("ws1")).await?);
    assert!(!store.create_workspace(&record("ws1")).await?);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let first = store
        .append_pending("ws1", &bytes, None, None)
        .await?
        .update;
    let second = store
        .append_pending("ws1", b"later", None, None)
        .await?
        .update;
    assert!(
        first.key < second.key,
        "pending keys follow the order of the edits"
    );
    // A pulled page moves the cursor in one transaction, only from the cursor it was pulled at.
    let chain = Chain::genesis().next(b"u1");
    let page = Page {
        from: (0, Chain::genesis()),
        to: (1, chain),
        records: vec![RemoteRecord {
            seq: 1,
            kind: PullRecordKind::Update,
            bytes: b"u1".to_vec(),
        }],
        chains: vec![(1, chain)],
    };
    assert!(store.store_page("ws1", &page).await?);
    assert!(
        !store.store_page("ws1", &page).await?,
        "a stale page is refused"
    );
    store.acknowledge("ws1", &[(first.key.clone(), 2)]).await?;
    assert!(
        store
            .compact(
                "ws1",
                &Compaction {
                    snapshot: vec![1, 2, 3],
                    covers: 1,
                    upload: Some(vec![1, 2, 3]),
                },
            )
            .await?
    );
    store.quarantine("ws1", &[2]).await?;
    drop(store);
    let reopened = IdbStore::open("hearth-test-bytes").await?;
    let state = reopened
        .load("ws1")
        .await?
        .ok_or(EngineError::UnknownWorkspace("ws1".into()))?;
    assert_eq!(state.pending.len(), 1);
    assert_eq!(state.pending[0].bytes, b"later");
    assert_eq!(state.snapshot, Some(vec![1, 2, 3]));
    assert!(state.received.is_empty(), "compacted and quarantined");
    assert_eq!(state.quarantined, vec![2]);
    assert_eq!(
        (state.record.last_pulled_seq, state.record.chain_head),
        (1, chain)
    );
    assert_eq!(reopened.outbox("ws1").await?, Some((1, vec![1, 2, 3])));
    Ok(())
}

#[wasm_bindgen_test]
async fn record_changes_happen_inside_one_transaction_and_never_weaken_a_token() -> R {
    let store = fresh("hearth-test-record").await?;
    store.create_workspace(&record("ws")).await?;
    let master = Change::Remote {
        server_url: "http://s".into(),
        token: "m".into(),
        role: shared_schema::Role::Master,
    };
    assert!(matches!(
        store.update_workspace("ws", &master).await?,
        Updated::Changed(_)
    ));
    let junk = Change::Remote {
        server_url: "http://s".into(),
        token: "junk".into(),
        role: shared_schema::Role::Read,
    };
    assert!(matches!(
        store.update_workspace("ws", &junk).await?,
        Updated::Unchanged(_)
    ));
    assert_eq!(
        store.get_workspace("ws").await?.and_then(|r| r.token),
        Some("m".to_string())
    );
    assert_eq!(
        store.update_workspace("nope", &junk).await?,
        Updated::Missing
    );
    Ok(())
}

#[wasm_bindgen_test]
async fn every_edit_is_in_indexeddb_before_it_returns() -> R {
    let store = fresh("hearth-test-engine").await?;
    let engine = Engine::create(store, "Notebook").await?;
    let ws = engine.id();
    let id = engine.create_note("Hello").await?;
    // After each edit returns, a new connection to the database and a new engine (what a tab
    // closed right then would leave) show exactly what the editing engine shows.
    macro_rules! durable {
        ($what:literal, $edit:expr) => {{
            $edit.await?;
            let again = Engine::open(IdbStore::open("hearth-test-engine").await?, &ws).await?;
            assert_eq!(again.notes(), engine.notes(), "after {}", $what);
        }};
    }
    durable!("create", async { Ok::<_, client_wasm::EngineError>(()) });
    durable!(
        "type",
        engine.splice_text(&id, Field::Body, 0, 0, "typed in a browser")
    );
    durable!("task", engine.add_task(&id, "t"));
    durable!("done", engine.set_task_done(&id, 0, true));
    durable!("tag", engine.set_tag(&id, "x", true));
    durable!("pin", engine.set_pinned(&id, true));
    durable!("trash", engine.set_trashed(&id, true));
    drop(engine);
    let again = Engine::open(IdbStore::open("hearth-test-engine").await?, &ws).await?;
    assert_eq!(
        again.note(&id).map(|n| n.body),
        Some("typed in a browser".to_string())
    );
    Ok(())
}

#[wasm_bindgen_test]
async fn pending_is_cleared_only_by_an_acknowledgement() -> R {
    let store = fresh("hearth-test-pending").await?;
    let engine = Engine::create(store, "N").await?;
    let ws = engine.id();
    // A push reads the queue; what is appended after that is its own
    // update (an unread last update may be merged into, a read one not).
    engine.store().pending_to_push(&ws).await?;
    engine.create_note("a").await?;
    let pending = engine.pending_updates().await?;
    assert!(pending.len() >= 2, "create + note are pending");
    drop(engine);
    let again = Engine::open(IdbStore::open("hearth-test-pending").await?, &ws).await?;
    assert_eq!(again.pending_updates().await?, pending);
    again
        .store()
        .acknowledge(&ws, &[(pending[0].key.clone(), 1)])
        .await?;
    assert_eq!(again.pending_updates().await?.len(), pending.len() - 1);
    Ok(())
}

#[wasm_bindgen_test]
async fn two_engines_on_one_database_see_each_others_edits_after_refresh() -> R {
    let store = fresh("hearth-test-tabs").await?;
    let a = Engine::create(store, "Shared").await?;
    let ws = a.id();
    let b = Engine::open(IdbStore::open("hearth-test-tabs").await?, &ws).await?;
    let id = a.create_note("from tab A").await?;
    assert!(b.note(&id).is_none());
    assert!(b.refresh().await?);
    assert_eq!(b.note(&id).map(|n| n.title), Some("from tab A".to_string()));
    Ok(())
}

#[wasm_bindgen_test]
fn a_real_quota_exceeded_dom_exception_is_reported_as_storage_full(
) -> Result<(), wasm_bindgen::JsValue> {
    let dom =
        web_sys::DomException::new_with_message_and_name("quota reached", "QuotaExceededError")?;
    let err: indexed_db_futures::error::Error = dom.into();
    assert_eq!(
        client_wasm::storage::idb::map_err(err),
        client_wasm::storage::StorageError::QuotaExceeded
    );
    let other = web_sys::DomException::new_with_message_and_name("nope", "DataError")?;
    let err: indexed_db_futures::error::Error = other.into();
    assert!(matches!(
        client_wasm::storage::idb::map_err(err),
        client_wasm::storage::StorageError::Other(_)
    ));
    Ok(())
}

#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function watch_transactions() {
  const proto = IDBDatabase.prototype;
  if (!proto.__hearthOriginal) proto.__hearthOriginal = proto.transaction;
  globalThis.__hearthTx = [];
  proto.transaction = function (names, mode, options) {
    const tx = proto.__hearthOriginal.call(this, names, mode, options);
    globalThis.__hearthTx.push(`${[].concat(names).join('+')}:${tx.mode}:${tx.durability}`);
    return tx;
  };
}
export function watched() {
  const out = globalThis.__hearthTx ?? [];
  globalThis.__hearthTx = [];
  return out.join(' ');
}
export function unwatch_transactions() {
  const proto = IDBDatabase.prototype;
  if (proto.__hearthOriginal) proto.transaction = proto.__hearthOriginal;
}
"#)]
extern "C" {
    fn watch_transactions();
    fn watched() -> String;
    fn unwatch_transactions();
}

#[wasm_bindgen_test]
async fn an_unsent_edit_and_a_token_are_on_disk_before_their_commit_returns() -> R {
    let store = fresh("hearth-test-durability").await?;
    watch_transactions();
    let result = async {
        store.create_workspace(&record("ws1")).await?;
        let created = watched();
        store.append_pending("ws1", b"edit", None, None).await?;
        let appended = watched();
        store
            .update_workspace(
                "ws1",
                &Change::Remote {
                    server_url: "http://127.0.0.1:1".into(),
                    role: shared_schema::Role::Master,
                    token: "t".into(),
                },
            )
            .await?;
        let token = watched();
        let page = Page {
            from: (0, Chain::genesis()),
            to: (1, Chain::genesis().next(b"r")),
            records: vec![RemoteRecord {
                seq: 1,
                kind: PullRecordKind::Update,
                bytes: b"r".to_vec(),
            }],
            chains: vec![],
        };
        store.store_page("ws1", &page).await?;
        let pulled = watched();
        Ok::<_, EngineError>((created, appended, token, pulled))
    }
    .await;
    unwatch_transactions();
    let (created, appended, token, pulled) = result?;
    assert!(created.contains("readwrite:strict"), "{created}");
    assert!(appended.contains("readwrite:strict"), "{appended}");
    assert!(token.contains("readwrite:strict"), "{token}");
    // A pulled record can be pulled again: the browser's default is enough.
    assert!(
        pulled.contains("readwrite:") && !pulled.contains("strict"),
        "{pulled}"
    );
    Ok(())
}

/// A Loro update setting `x.k` to `v`.
fn loro_update(k: &str, v: i64) -> Result<Vec<u8>, String> {
    let doc = loro::LoroDoc::new();
    doc.get_map("x").insert(k, v).map_err(|e| e.to_string())?;
    doc.commit();
    doc.export(loro::ExportMode::all_updates())
        .map_err(|e| e.to_string())
}

#[wasm_bindgen_test]
async fn sealed_records_that_do_not_open_are_quarantined_in_indexeddb_and_the_rest_applies(
) -> Result<(), String> {
    use shared_schema::seal::{seal, EpochKey, KeyRing, Secret, Witness};
    let store = fresh("hearth-test-sealed-quarantine")
        .await
        .map_err(|e| e.to_string())?;
    let key = |epoch, b| EpochKey {
        epoch,
        key: Secret::from_bytes([b; 32]),
    };
    let id = "ws-sealed";
    let ring = KeyRing {
        epochs: vec![key(1, 7)],
        link_secret: Some(Secret::from_bytes([1; 32])),
        ..KeyRing::default()
    };
    let stored = WorkspaceRecord {
        keys: Some(ring),
        server_url: Some("http://127.0.0.1:9".into()),
        token: Some("t".into()),
        ..record(id)
    };
    store
        .create_workspace(&stored)
        .await
        .map_err(|e| e.to_string())?;
    let witness = Witness::new(0, &Chain::genesis());
    let sealed = |k: &EpochKey, k2: &str, v| -> Result<Vec<u8>, String> {
        Ok(seal(id, k, witness, [3; 16], &loro_update(k2, v)?))
    };
    let mut tampered = sealed(&key(1, 7), "tampered", 2)?;
    tampered[20] ^= 1;
    let bytes = [
        sealed(&key(1, 7), "first", 1)?,
        tampered,
        sealed(&key(1, 8), "wrong_key", 3)?,
        sealed(&key(2, 7), "unknown_epoch", 4)?,
        sealed(&key(1, 7), "last", 5)?,
    ];
    let mut chain = Chain::genesis();
    let mut chains = Vec::new();
    let records: Vec<RemoteRecord> = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            chain = chain.next(b);
            chains.push((i as u64 + 1, chain));
            RemoteRecord {
                seq: i as u64 + 1,
                kind: PullRecordKind::Update,
                bytes: b.clone(),
            }
        })
        .collect();
    let page = Page {
        from: (0, Chain::genesis()),
        to: (5, chain),
        records,
        chains,
    };
    assert!(store
        .store_page(id, &page)
        .await
        .map_err(|e| e.to_string())?);
    // Opened twice: the second open reads the quarantine back from IndexedDB.
    for _ in 0..2 {
        let engine = Engine::open(store.clone(), id)
            .await
            .map_err(|e| e.to_string())?;
        assert_eq!(engine.quarantined(), vec![2, 3, 4]);
        let x = engine.doc().get_map("x");
        for k in ["first", "last"] {
            assert!(x.get(k).is_some(), "{k} applied");
        }
        for k in ["tampered", "wrong_key", "unknown_epoch"] {
            assert!(x.get(k).is_none(), "{k} not applied");
        }
    }
    Ok(())
}
