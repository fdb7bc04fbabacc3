//! Behaviour every [`Store`] must have, run on the in-memory twin natively (`tests/store.rs`) and
//! on IndexedDB in Chromium (`tests/browser.rs`).

use client_wasm::storage::{Compaction, Page, RemoteRecord, Since, Store, WorkspaceRecord};
use shared_schema::frame::PullRecordKind;
use shared_schema::Chain;

/// A contract check failed.
pub type Failed = String;

fn page(from: (u64, Chain), seqs: std::ops::RangeInclusive<u64>) -> Page {
    let mut chain = from.1;
    let mut chains = Vec::new();
    let records: Vec<RemoteRecord> = seqs
        .map(|seq| {
            let bytes = format!("u{seq}").into_bytes();
            chain = chain.next(&bytes);
            chains.push((seq, chain));
            RemoteRecord {
                seq,
                kind: PullRecordKind::Update,
                bytes,
            }
        })
        .collect();
    let to = records.last().map(|r| r.seq).unwrap_or(from.0);
    Page {
        from,
        to: (to, chain),
        records,
        chains,
    }
}

fn check(ok: bool, what: &str) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

/// `load_since` returns only records after the caller's cursor, pending keys after its last key,
/// and the snapshot only when it changed; `load` returns everything.
pub async fn load_since_returns_only_what_is_new<S: Store>(store: &S) -> Result<(), Failed> {
    let e = |e: client_wasm::storage::StorageError| e.to_string();
    let id = "ws-since";
    store
        .create_workspace(&WorkspaceRecord::new_local(id, "t"))
        .await
        .map_err(e)?;
    let p1 = store
        .append_pending(id, b"p1", None, None)
        .await
        .map_err(e)?
        .update;
    let first = page((0, Chain::genesis()), 1..=3);
    check(
        store.store_page(id, &first).await.map_err(e)?,
        "page 1 stored",
    )?;
    let all = store.load(id).await.map_err(e)?.ok_or("no workspace")?;
    check(
        all.received.len() == 3 && all.pending.len() == 1,
        "load returns everything",
    )?;
    let since = Since {
        snapshot_covers: Some(all.record.snapshot_covers),
        received_after: 3,
        pending_after: Some(p1.key.clone()),
    };
    let nothing = store
        .load_since(id, &since)
        .await
        .map_err(e)?
        .ok_or("gone")?;
    check(
        nothing.received.is_empty() && nothing.pending.is_empty() && nothing.snapshot.is_none(),
        "nothing new since the last read",
    )?;
    let p2 = store
        .append_pending(id, b"p2", None, None)
        .await
        .map_err(e)?
        .update;
    let second = page(first.to, 4..=5);
    check(
        store.store_page(id, &second).await.map_err(e)?,
        "page 2 stored",
    )?;
    let tail = store
        .load_since(id, &since)
        .await
        .map_err(e)?
        .ok_or("gone")?;
    let seqs: Vec<u64> = tail.received.iter().map(|r| r.seq).collect();
    check(seqs == vec![4, 5], &format!("received after 3: {seqs:?}"))?;
    // The chain values of stored pages are kept for witness checks, seq by seq.
    let kept: Vec<u64> = tail.record.recent_chains.iter().map(|(s, _)| *s).collect();
    check(
        kept == vec![1, 2, 3, 4, 5],
        &format!("chain history: {kept:?}"),
    )?;
    check(
        tail.record.recent_chains[4].1 == second.to.1.as_bytes()[..8],
        "the chain value at seq 5 is the page's",
    )?;
    let keys: Vec<&str> = tail.pending.iter().map(|p| p.key.as_str()).collect();
    check(keys == vec![p2.key.as_str()], "pending after the last key")?;
    check(tail.snapshot.is_none(), "an unchanged snapshot is not read")?;
    let compacted = store
        .compact(
            id,
            &Compaction {
                snapshot: b"snap".to_vec(),
                covers: 5,
                upload: None,
            },
        )
        .await
        .map_err(e)?;
    check(compacted, "compacted")?;
    let after = store
        .load_since(id, &since)
        .await
        .map_err(e)?
        .ok_or("gone")?;
    check(
        after.snapshot.as_deref() == Some(&b"snap"[..]),
        "a changed snapshot is read",
    )?;
    Ok(())
}

/// A merge replaces the run's update with the merged bytes under the next key — only while it is
/// the last update appended and no push has read it; otherwise the edit is appended alone. A
/// staged append hands its update over as stored and reserves the next edit's key, which a later
/// append uses as given (handed over before any read) while later keys stay above it.
pub async fn a_merge_replaces_only_an_unread_last_update<S: Store>(
    store: &S,
) -> Result<(), Failed> {
    use client_wasm::storage::Merge;
    let e = |e: client_wasm::storage::StorageError| e.to_string();
    let id = "ws-merge";
    store
        .create_workspace(&WorkspaceRecord::new_local(id, "t"))
        .await
        .map_err(e)?;
    let first = store
        .append_pending(id, b"e1", None, None)
        .await
        .map_err(e)?;
    check(!first.merged, "nothing to merge into")?;
    let merged = store
        .append_pending(
            id,
            b"e2",
            Some(Merge {
                replaces: &first.update.key,
                bytes: b"e1+e2",
            }),
            None,
        )
        .await
        .map_err(e)?;
    check(merged.merged, "merged into the last, unread update")?;
    let pending = store.pending(id).await.map_err(e)?;
    check(
        pending.len() == 1
            && pending[0].bytes == b"e1+e2"
            && pending[0].key == merged.update.key
            && merged.update.key > first.update.key,
        "the merged bytes replace the run under a later key",
    )?;
    // A push reads the queue: nothing may be merged into what it read.
    let read = store.pending_to_push(id).await.map_err(e)?;
    check(
        read.pending == pending && read.record.is_some_and(|r| r.id == id),
        "the push reads the queue and the record",
    )?;
    let after = store
        .append_pending(
            id,
            b"e3",
            Some(Merge {
                replaces: &merged.update.key,
                bytes: b"e1+e2+e3",
            }),
            None,
        )
        .await
        .map_err(e)?;
    check(!after.merged, "never merged into an update a push read")?;
    // Another tab appended meanwhile: the run is no longer the last update.
    let other = store
        .append_pending(id, b"tab", None, None)
        .await
        .map_err(e)?;
    let late = store
        .append_pending(
            id,
            b"e4",
            Some(Merge {
                replaces: &after.update.key,
                bytes: b"e3+e4",
            }),
            None,
        )
        .await
        .map_err(e)?;
    check(!late.merged, "never merged past another tab's update")?;
    let bytes: Vec<Vec<u8>> = store
        .pending(id)
        .await
        .map_err(e)?
        .into_iter()
        .map(|p| p.bytes)
        .collect();
    check(
        bytes
            == [
                b"e1+e2".to_vec(),
                b"e3".to_vec(),
                b"tab".to_vec(),
                b"e4".to_vec(),
            ]
            && other.update.key < late.update.key,
        "every edit kept, in the order made",
    )?;
    // Counted per workspace, as many as are listed (one whose id starts with this one's apart).
    let next_door = "ws-merge-2";
    store
        .create_workspace(&WorkspaceRecord::new_local(next_door, "t"))
        .await
        .map_err(e)?;
    store
        .append_pending(next_door, b"x", None, None)
        .await
        .map_err(e)?;
    check(
        store.pending_len(id).await.map_err(e)? == bytes.len()
            && store.pending_len(next_door).await.map_err(e)? == 1,
        "pending_len counts the workspace's pending updates",
    )?;
    // The staging callback is given the update exactly as it is stored, and the newest other
    // pending key (what a push must have sent before it).
    let seen = std::cell::RefCell::new(None);
    let stage = |u: &client_wasm::storage::PendingUpdate, after: Option<&str>| {
        *seen.borrow_mut() = Some((u.clone(), after.map(str::to_owned)))
    };
    let hand = |ahead| {
        Some(client_wasm::storage::Stage {
            hand: &stage,
            ahead,
        })
    };
    let staged = store
        .append_pending(id, b"e5", None, hand(None))
        .await
        .map_err(e)?;
    let last = store.pending(id).await.map_err(e)?.pop();
    check(
        seen.borrow().as_ref() == Some(&(staged.update.clone(), Some(late.update.key.clone())))
            && last.as_ref() == Some(&staged.update),
        "the staged update is the stored one, after the newest other",
    )?;
    // A staged append reserves the next edit's key, above its own.
    let reserved = staged
        .next
        .clone()
        .ok_or("a staged append reserves a key")?;
    check(reserved > staged.update.key, "the reserved key sorts after")?;
    // Another tab appends meanwhile (a greater key); then the reserved key is used, with what
    // the caller knew: it is handed over as given and stored under that key.
    let other = store
        .append_pending(id, b"other-tab", None, None)
        .await
        .map_err(e)?;
    let ahead = client_wasm::storage::Ahead {
        key: &reserved,
        after: Some(&staged.update.key),
    };
    let early = store
        .append_pending(id, b"e6", None, hand(Some(ahead)))
        .await
        .map_err(e)?;
    let keys: Vec<String> = store
        .pending(id)
        .await
        .map_err(e)?
        .into_iter()
        .map(|p| p.key)
        .collect();
    check(
        early.update.key == reserved
            && seen.borrow().as_ref()
                == Some(&(early.update.clone(), Some(staged.update.key.clone())))
            && keys.contains(&reserved)
            && other.update.key > reserved,
        "a reserved key is stored as handed over, even below a later tab's",
    )?;
    // The next reservation and every later key stay above every key stored.
    let next = early.next.ok_or("a staged append reserves a key")?;
    let after = store
        .append_pending(id, b"e7", None, None)
        .await
        .map_err(e)?;
    check(
        next > other.update.key && after.update.key > next,
        "keys allocated later sort after every stored one",
    )
}

/// `reseal_pending` replaces a pending update only while it is still stored under its key and
/// still plain: one acknowledged meanwhile (gone) or already sealed is left alone.
pub async fn reseal_replaces_only_plain_updates_still_pending<S: Store>(
    store: &S,
) -> Result<(), Failed> {
    use client_wasm::storage::PendingUpdate;
    let e = |e: client_wasm::storage::StorageError| e.to_string();
    let id = "ws-reseal";
    store
        .create_workspace(&WorkspaceRecord::new_local(id, "t"))
        .await
        .map_err(e)?;
    let plain = store
        .append_pending(id, b"loro-plain", None, None)
        .await
        .map_err(e)?;
    let sealed = store
        .append_pending(id, &[0xE6, 1, 2], None, None)
        .await
        .map_err(e)?;
    let replacement = |key: &str| PendingUpdate {
        key: key.to_owned(),
        bytes: vec![0xE6, 9, 9],
    };
    let n = store
        .reseal_pending(
            id,
            &[
                replacement(&plain.update.key),
                replacement(&sealed.update.key),
                replacement("gone-already"),
            ],
        )
        .await
        .map_err(e)?;
    check(n == 1, "exactly the plain update still pending is replaced")?;
    let pending = store.pending(id).await.map_err(e)?;
    check(
        pending == vec![replacement(&plain.update.key), sealed.update.clone()],
        "the plain one holds the sealed bytes under its key, the sealed one is untouched",
    )
}
