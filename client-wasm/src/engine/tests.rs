//! Native tests of the engine on the in-memory store.

use super::*;
use crate::storage::{Change, MemoryStore, Store, Updated};
use crate::sync::memory::{Limits, MemoryServer};
use crate::sync::{Remote, SyncCore, SyncError, Transport};
use futures::executor::block_on;
use shared_schema::frame::{self, PullRecordKind, PushRecord};
use shared_schema::sync::StopReason;
use shared_schema::Role;

type R = Result<(), Box<dyn std::error::Error>>;

pub(crate) const SERVER: &str = "http://memory";

/// One device: its store (shared by its tabs), its sync core and one engine (a tab).
pub(crate) struct Device {
    pub(crate) store: MemoryStore,
    pub(crate) core: SyncCore<MemoryStore, MemoryServer>,
    pub(crate) engine: Engine<MemoryStore>,
}

/// A share link's token and key (`&k=`), made on the owner's device.
pub(crate) async fn invite(
    server: &MemoryServer,
    owner: &MemoryStore,
    ws: &str,
    role: Role,
) -> Result<(String, Option<String>), Box<dyn std::error::Error>> {
    let request = shared_schema::api::MintTokenRequest {
        role,
        expires_in: None,
        label: "test".into(),
    };
    let shared = crate::sync::keys::share(owner, server, ws, &request).await?;
    Ok((shared.minted.token, shared.key.map(|k| k.to_text())))
}

impl Device {
    /// A new notebook on a fresh device, registered on `server` (master).
    pub(crate) async fn owner(server: &MemoryServer) -> Result<Self, Box<dyn std::error::Error>> {
        let store = MemoryStore::new();
        let engine = Engine::create(store.clone(), "W").await?;
        crate::sync::connect(&store, server, SERVER, &engine.id()).await?;
        engine.refresh().await?;
        Ok(Self {
            core: SyncCore::new(store.clone(), server.clone()),
            store,
            engine,
        })
    }

    /// A fresh device that joins `ws` with a new link of `role` made on the owner's device (whose
    /// store is `owner`), as a person would: token and key.
    pub(crate) async fn member(
        server: &MemoryServer,
        owner: &MemoryStore,
        ws: &str,
        role: Role,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let store = MemoryStore::new();
        let (token, key) = invite(server, owner, ws, role).await?;
        crate::sync::join(&store, server, SERVER, ws, &token, key.as_deref()).await?;
        let engine = Engine::open(store.clone(), ws).await?;
        Ok(Self {
            core: SyncCore::new(store.clone(), server.clone()),
            store,
            engine,
        })
    }

    /// One sync round, then the tab catches up.
    pub(crate) async fn sync(&self) -> Result<crate::sync::Round, Box<dyn std::error::Error>> {
        let round = self.core.sync_once(&self.engine.id(), &|_, _| {}).await?;
        self.engine.refresh().await?;
        Ok(round)
    }
}

#[test]
fn a_new_workspace_is_migrated_named_and_pending() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "Home").await?;
        assert_eq!(e.name(), "Home");
        assert_eq!(model::schema_version(&e.doc()), model::SCHEMA_VERSION);
        assert_eq!(e.pending_updates().await?.len(), 1);
        Ok(())
    })
}

#[test]
fn every_edit_is_durable_before_it_returns() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let ws = e.id();
        let id = e.create_note("Title").await?;
        // After each edit returns, a fresh engine on the same storage (what a crash right then
        // would leave) must show exactly what the editing engine shows.
        macro_rules! durable {
            ($what:literal, $edit:expr) => {{
                $edit.await?;
                let fresh = Engine::open(store.clone(), &ws).await?;
                assert_eq!(fresh.notes(), e.notes(), "after {}", $what);
            }};
        }
        durable!("create", async { Ok::<_, EngineError>(()) });
        durable!("type", e.splice_text(&id, Field::Body, 0, 0, "body"));
        durable!("rename", e.rename("W2"));
        durable!("task 1", e.add_task(&id, "t1"));
        durable!("task 2", e.add_task(&id, "t2"));
        durable!("done", e.set_task_done(&id, 0, true));
        durable!("move", e.move_task(&id, 1, 0));
        durable!("tag", e.set_tag(&id, "x", true));
        durable!("pin", e.set_pinned(&id, true));
        durable!("trash", e.set_trashed(&id, true));
        durable!("restore", e.set_trashed(&id, false));
        durable!("delete task", e.delete_task(&id, 1));
        let fresh = Engine::open(store.clone(), &ws).await?;
        assert_eq!(fresh.name(), "W2");
        assert_eq!(fresh.notes()[0].tasks[0].text, "t2");
        Ok(())
    })
}

#[test]
fn a_full_quota_fails_the_edit_and_keeps_what_was_stored() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let id = e.create_note("kept").await?;
        store.set_quota_full(true);
        let err = e.splice_text(&id, Field::Title, 0, 4, "lost").await;
        assert!(matches!(
            err,
            Err(EngineError::Storage(
                crate::storage::StorageError::QuotaExceeded
            ))
        ));
        assert_eq!(
            e.note(&id).map(|n| n.title),
            Some("kept".into()),
            "rolled back in memory"
        );
        store.set_quota_full(false);
        e.splice_text(&id, Field::Title, 4, 4, "!").await?;
        let ws = e.id();
        drop(e);
        let again = Engine::open(store, &ws).await?;
        assert_eq!(again.note(&id).map(|n| n.title), Some("kept!".into()));
        Ok(())
    })
}

#[test]
fn a_read_only_member_is_refused_every_edit_and_nothing_changes() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let id = owner.engine.create_note("shared").await?;
        owner.engine.add_task(&id, "a").await?;
        owner.engine.add_task(&id, "b").await?;
        owner.sync().await?;
        let version = owner.engine.history()[0].id.clone();
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        let e = &reader.engine;
        assert!(e.is_read_only());
        assert_eq!(e.note(&id).map(|n| n.tasks.len()), Some(2));
        let before = e.doc().oplog_vv();
        let results = [
            ("rename", e.rename("no").await),
            ("create_note", e.create_note("no").await.map(|_| ())),
            (
                "splice_text",
                e.splice_text(&id, Field::Title, 0, 0, "no").await,
            ),
            ("add_task", e.add_task(&id, "no").await),
            ("set_task_done", e.set_task_done(&id, 0, true).await),
            ("move_task", e.move_task(&id, 0, 1).await),
            ("delete_task", e.delete_task(&id, 0).await),
            ("set_tag", e.set_tag(&id, "no", true).await),
            ("set_pinned", e.set_pinned(&id, true).await),
            ("set_trashed", e.set_trashed(&id, true).await),
            ("purge", e.purge(&id).await),
            ("restore_note", e.restore_note(&version, &id).await),
        ];
        for (name, result) in results {
            assert!(
                matches!(result, Err(EngineError::ReadOnly)),
                "{name} on a read-only member: {result:?}"
            );
        }
        assert_eq!(e.doc().oplog_vv(), before, "no op was made");
        assert!(reader.store.pending(&ws).await?.is_empty());
        Ok(())
    })
}

#[test]
fn history_lists_versions_and_restores_an_overwritten_note() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "W").await?;
        let id = e.create_note("Draft").await?;
        e.splice_text(&id, Field::Body, 0, 0, "the good text")
            .await?;
        let good = e.history()[0].id.clone();
        e.splice_text(&id, Field::Body, 0, 13, "oops").await?;
        e.add_task(&id, "later").await?;
        assert_eq!(
            e.note_at(&good, &id)?.map(|n| n.body),
            Some("the good text".into())
        );
        assert!(e.history().len() >= 5);
        e.restore_note(&good, &id).await?;
        let n = e.note(&id).ok_or("missing")?;
        assert_eq!(n.body, "the good text");
        assert!(n.tasks.is_empty());
        assert!(matches!(
            e.notes_at("9@9"),
            Err(EngineError::UnknownVersion(_))
        ));
        Ok(())
    })
}

#[test]
fn a_backup_round_trips_into_a_new_workspace_with_no_server() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "Trip").await?;
        let id = e.create_note("Packing").await?;
        e.add_task(&id, "passport").await?;
        let bytes = e.export_backup()?;
        let restored = Engine::import_backup(MemoryStore::new(), &bytes, None).await?;
        assert_ne!(restored.id(), e.id());
        assert_eq!(restored.notes(), e.notes());
        assert_eq!(
            restored.name(),
            "Trip (restored)",
            "not named like the original"
        );
        assert!(
            !restored.pending_updates().await?.is_empty(),
            "restored data will be pushed"
        );
        assert!(Engine::import_backup(MemoryStore::new(), b"garbage", None)
            .await
            .is_err());
        Ok(())
    })
}

mod convergence {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Create(String),
        Type {
            note: usize,
            pos: usize,
            text: String,
        },
        Delete {
            note: usize,
            pos: usize,
            len: usize,
        },
        Task {
            note: usize,
            text: String,
        },
        Toggle {
            note: usize,
            index: usize,
        },
        Move {
            note: usize,
            from: usize,
            to: usize,
        },
        Tag {
            note: usize,
            tag: String,
            on: bool,
        },
        Pin {
            note: usize,
            on: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            "[a-z]{0,5}".prop_map(Op::Create),
            (0..4usize, 0..20usize, "[a-zé ]{1,4}").prop_map(|(note, pos, text)| Op::Type {
                note,
                pos,
                text
            }),
            (0..4usize, 0..20usize, 1..4usize).prop_map(|(note, pos, len)| Op::Delete {
                note,
                pos,
                len
            }),
            (0..4usize, "[a-z]{1,3}").prop_map(|(note, text)| Op::Task { note, text }),
            (0..4usize, 0..4usize).prop_map(|(note, index)| Op::Toggle { note, index }),
            (0..4usize, 0..4usize, 0..4usize).prop_map(|(note, from, to)| Op::Move {
                note,
                from,
                to
            }),
            (0..4usize, "[a-c]", any::<bool>()).prop_map(|(note, tag, on)| Op::Tag {
                note,
                tag,
                on
            }),
            (0..4usize, any::<bool>()).prop_map(|(note, on)| Op::Pin { note, on }),
        ]
    }

    /// Applies an op; ops that do not fit the replica's current state are skipped (as a UI would).
    /// True when an edit was made.
    async fn apply(e: &Engine<MemoryStore>, op: &Op) -> bool {
        let notes = e.notes();
        let pick = |i: usize| notes.get(i % notes.len().max(1)).cloned();
        let skipped = || Err(EngineError::UnknownVersion("skipped".into()));
        let result = match op.clone() {
            Op::Create(t) => e.create_note(&t).await.map(|_| ()),
            Op::Type { note, pos, text } => match pick(note) {
                Some(n) => {
                    let p = pos.min(n.body.chars().count());
                    e.splice_text(&n.id, Field::Body, p, p, &text).await
                }
                None => skipped(),
            },
            Op::Delete { note, pos, len } => match pick(note) {
                Some(n) => {
                    let total = n.body.chars().count();
                    let s = pos.min(total);
                    e.splice_text(&n.id, Field::Body, s, (s + len).min(total), "")
                        .await
                }
                None => skipped(),
            },
            Op::Task { note, text } => match pick(note) {
                Some(n) => e.add_task(&n.id, &text).await,
                None => skipped(),
            },
            Op::Toggle { note, index } => match pick(note) {
                Some(n) if !n.tasks.is_empty() => {
                    e.set_task_done(&n.id, index % n.tasks.len(), true).await
                }
                _ => skipped(),
            },
            Op::Move { note, from, to } => match pick(note) {
                Some(n) if !n.tasks.is_empty() => {
                    e.move_task(&n.id, from % n.tasks.len(), to % n.tasks.len())
                        .await
                }
                _ => skipped(),
            },
            Op::Tag { note, tag, on } => match pick(note) {
                Some(n) => e.set_tag(&n.id, &tag, on).await,
                None => skipped(),
            },
            Op::Pin { note, on } => match pick(note) {
                Some(n) => e.set_pinned(&n.id, on).await,
                None => skipped(),
            },
        };
        match result {
            Ok(()) => true,
            Err(EngineError::UnknownVersion(_)) => false,
            Err(other) => panic!("an edit that fits the notebook failed: {other}"),
        }
    }

    /// Kinds of op, for counting which ones really applied.
    fn kind(op: &Op) -> usize {
        match op {
            Op::Create(_) => 0,
            Op::Type { .. } => 1,
            Op::Delete { .. } => 2,
            Op::Task { .. } => 3,
            Op::Toggle { .. } => 4,
            Op::Move { .. } => 5,
            Op::Tag { .. } => 6,
            Op::Pin { .. } => 7,
        }
    }

    type Round = (Vec<(usize, Op)>, Vec<(usize, usize)>);

    /// One case: the rounds' edits on three replicas with partial syncs in between, then full
    /// syncs; checks convergence and returns how many edits of each kind applied.
    async fn converge(rounds: Vec<Round>) -> Result<[usize; 8], TestCaseError> {
        let fail = |e: Box<dyn std::error::Error>| TestCaseError::fail(e.to_string());
        let server = MemoryServer::new();
        let a = Device::owner(&server).await.map_err(fail)?;
        let ws = a.engine.id();
        let owner_store = a.store.clone();
        let mut replicas = vec![a];
        for _ in 0..2 {
            replicas.push(
                Device::member(&server, &owner_store, &ws, Role::Write)
                    .await
                    .map_err(fail)?,
            );
        }
        // One shared note to start from, so most edits fit every replica.
        replicas[0]
            .engine
            .create_note("start")
            .await
            .map_err(|e| fail(e.into()))?;
        for r in &replicas {
            r.sync().await.map_err(fail)?;
        }
        let mut applied = [0usize; 8];
        for (ops, exchanges) in rounds {
            for (who, op) in &ops {
                let made = apply(&replicas[*who].engine, op).await;
                if matches!(op, Op::Create(_)) {
                    prop_assert!(made, "creating a note always applies");
                }
                if made {
                    applied[kind(op)] += 1;
                }
            }
            // Partial, random-order sync rounds (like flaky sync).
            for (from, to) in exchanges {
                replicas[from].sync().await.map_err(fail)?;
                replicas[to].sync().await.map_err(fail)?;
            }
        }
        // Every replica syncs twice: all of them end with everything.
        for _ in 0..2 {
            for r in &replicas {
                r.sync().await.map_err(fail)?;
            }
        }
        let first = replicas[0].engine.notes();
        // No op deletes a note: every note created anywhere is on every replica.
        prop_assert_eq!(first.len(), applied[0] + 1);
        // Every applied edit is one Loro commit of at least one op, and all of them arrived.
        let ops: usize = replicas[0]
            .engine
            .doc()
            .oplog_vv()
            .values()
            .map(|n| *n as usize)
            .sum();
        let edits: usize = applied.iter().sum();
        prop_assert!(
            ops >= edits,
            "{edits} edits applied but only {ops} ops replicated"
        );
        for r in &replicas[1..] {
            prop_assert_eq!(&r.engine.notes(), &first);
            prop_assert_eq!(
                r.engine.doc().get_deep_value(),
                replicas[0].engine.doc().get_deep_value()
            );
            prop_assert_eq!(
                r.engine.doc().oplog_vv(),
                replicas[0].engine.doc().oplog_vv()
            );
        }
        Ok(applied)
    }

    #[test]
    fn random_edits_on_three_replicas_converge_in_any_exchange_order_and_most_edits_apply() -> R {
        use proptest::test_runner::{Config, TestRunner};
        let rounds = proptest::collection::vec(
            (
                proptest::collection::vec((0..3usize, op()), 1..8),
                proptest::collection::vec((0..3usize, 0..3usize), 0..6),
            ),
            1..5,
        );
        let totals = std::cell::RefCell::new(([0usize; 8], [0usize; 8]));
        let mut runner = TestRunner::new(Config {
            cases: 48,
            ..Config::default()
        });
        runner.run(&rounds, |rounds| {
            let tried =
                rounds
                    .iter()
                    .flat_map(|(ops, _)| ops)
                    .fold([0usize; 8], |mut t, (_, op)| {
                        t[kind(op)] += 1;
                        t
                    });
            let applied = block_on(converge(rounds))?;
            let mut totals = totals.borrow_mut();
            for k in 0..8 {
                totals.0[k] += tried[k];
                totals.1[k] += applied[k];
            }
            Ok(())
        })?;
        // Edits that fit the notebook must apply: a replica whose edits all failed would still
        // "converge" (on an empty notebook). Every kind applied, and most edits did.
        let (tried, applied) = totals.into_inner();
        for k in 0..8 {
            assert!(
                applied[k] > 0,
                "no edit of kind {k} applied ({} tried)",
                tried[k]
            );
        }
        let (t, a): (usize, usize) = (tried.iter().sum(), applied.iter().sum());
        assert!(
            a * 2 > t,
            "only {a} of {t} edits applied: tried {tried:?}, applied {applied:?}"
        );
        Ok(())
    }
}

/// Pushes raw records with a token, as a hostile member's client would.
pub(crate) async fn push_raw(
    server: &MemoryServer,
    ws: &str,
    token: &str,
    records: &[(&str, &[u8])],
) -> Result<(), Box<dyn std::error::Error>> {
    let batch: Vec<PushRecord> = records
        .iter()
        .map(|(k, b)| PushRecord {
            key: k.as_bytes().to_vec(),
            bytes: b.to_vec(),
        })
        .collect();
    let remote = Remote {
        server_url: SERVER.into(),
        ws: ws.into(),
        token: token.into(),
    };
    server
        .push(&remote, frame::encode_push_batch(&batch)?)
        .await?;
    Ok(())
}

#[test]
fn two_tabs_editing_at_once_never_share_op_ids_and_a_third_device_sees_both() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        // A second tab of the same device: same store, its own engine.
        let tab2 = Engine::open(a.store.clone(), &ws).await?;
        let one = a.engine.create_note("from tab one").await?;
        let two = tab2.create_note("from tab two").await?;
        a.sync().await?;
        tab2.refresh().await?;
        let c = Device::member(&server, &a.store, &ws, Role::Write).await?;
        c.sync().await?;
        for (id, title) in [(&one, "from tab one"), (&two, "from tab two")] {
            assert_eq!(c.engine.note(id).map(|n| n.title), Some(title.into()));
            assert_eq!(tab2.note(id).map(|n| n.title), Some(title.into()));
        }
        a.sync().await?;
        assert_eq!(c.engine.doc().oplog_vv(), a.engine.doc().oplog_vv());
        Ok(())
    })
}

#[test]
fn a_rollback_never_lets_a_later_edit_reuse_op_ids() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let peer = e.doc().peer_id();
        store.set_quota_full(true);
        assert!(e.create_note("refused").await.is_err());
        store.set_quota_full(false);
        assert_ne!(e.doc().peer_id(), peer);
        Ok(())
    })
}

#[test]
fn an_undecodable_update_is_quarantined_and_every_valid_note_still_opens() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("before").await?;
        a.sync().await?;
        let hostile = server.mint(&ws, Role::Write);
        push_raw(&server, &ws, &hostile, &[("evil-1", b"not loro at all")]).await?;
        a.engine.create_note("after").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        b.sync().await?;
        let titles: Vec<String> = b.engine.notes().into_iter().map(|n| n.title).collect();
        assert!(titles.contains(&"before".to_string()) && titles.contains(&"after".to_string()));
        let bad_seq = server
            .log(&ws)
            .and_then(|l| l.keys.get(b"evil-1".as_slice()).copied())
            .ok_or("garbage not stored")?;
        assert_eq!(b.engine.quarantined(), vec![bad_seq]);
        // Reopening never fails and the record stays aside, counted.
        let again = Engine::open(b.store.clone(), &ws).await?;
        assert_eq!(again.quarantined(), vec![bad_seq]);
        assert_eq!(again.notes().len(), 2);
        Ok(())
    })
}

#[test]
fn a_pulled_snapshot_is_merged_never_substituted_for_local_state() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        a.engine.create_note("one").await?;
        a.sync().await?;
        b.sync().await?;
        assert_eq!(b.engine.notes().len(), 1);
        // The owner's token uploads an empty (and then a garbage) snapshot at the head.
        let owner = a.store.get_workspace(&ws).await?.ok_or("missing")?;
        let remote = Remote {
            server_url: SERVER.into(),
            ws: ws.clone(),
            token: owner.token.ok_or("no token")?,
        };
        let head = server.log(&ws).ok_or("no log")?.head;
        let empty = LoroDoc::new().export(ExportMode::Snapshot)?;
        server.put_snapshot(&remote, head, empty).await?;
        let c = Device::member(&server, &a.store, &ws, Role::Write).await?;
        c.engine.create_note("c's own").await?;
        c.sync().await?;
        server
            .put_snapshot(
                &remote,
                server.log(&ws).ok_or("no log")?.head,
                b"garbage".to_vec(),
            )
            .await?;
        b.engine.create_note("b's own").await?;
        b.sync().await?;
        // b merged the empty snapshot (nothing lost), quarantined the garbage one, and kept both
        // what it had and its own later edit. (Updates the garbage snapshot covers are not sent
        // to devices behind it: only the owner's token may upload snapshots.)
        let titles: Vec<String> = b.engine.notes().into_iter().map(|n| n.title).collect();
        assert!(titles.contains(&"one".to_string()), "{titles:?}");
        assert!(titles.contains(&"b's own".to_string()), "{titles:?}");
        assert_eq!(b.engine.quarantined().len(), 1);
        let reopened = Engine::open(b.store.clone(), &ws).await?;
        assert_eq!(reopened.notes(), b.engine.notes());
        Ok(())
    })
}

#[test]
fn a_join_link_never_replaces_the_owners_token_and_bad_links_store_nothing() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let before = a.store.get_workspace(&ws).await?;
        let junk = server.mint(&ws, Role::Read);
        let after = crate::sync::join(&a.store, &server, SERVER, &ws, &junk, None).await?;
        assert_eq!(Some(after), before);
        assert_eq!(a.store.get_workspace(&ws).await?, before);
        let fresh = MemoryStore::new();
        for (id, token) in [
            ("not-a-uuid", junk.as_str()),
            (ws.as_str(), "garbage"),
            (ws.as_str(), "h.999.forged"),
        ] {
            assert!(crate::sync::join(&fresh, &server, SERVER, id, token, None)
                .await
                .is_err());
        }
        assert!(fresh.list_workspaces().await?.is_empty());
        Ok(())
    })
}

#[test]
fn storing_a_page_changes_only_the_cursor_and_never_revives_a_forgotten_notebook() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        a.engine.create_note("n").await?;
        a.sync().await?;
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        // A rotation lands between the pull and the store of its page: the page must not write
        // the old token back.
        let stale = b.store.get_workspace(&ws).await?.ok_or("missing")?;
        let rotation = Change::Token {
            old: stale.token.clone().ok_or("no token")?,
            new: "h.1.rotated".into(),
        };
        let rotated = b.store.update_workspace(&ws, &rotation).await?;
        assert!(matches!(rotated, Updated::Changed(_)));
        let page = crate::storage::Page {
            from: (0, stale.chain_head),
            to: (1, server.records(&ws)[0].chain),
            records: vec![],
            chains: vec![],
        };
        assert!(b.store.store_page(&ws, &page).await?);
        let now = b.store.get_workspace(&ws).await?.ok_or("missing")?;
        assert_eq!(now.token.as_deref(), Some("h.1.rotated"));
        assert_eq!(now.last_pulled_seq, 1);
        // Forgotten meanwhile: nothing is re-created.
        b.store.delete_workspace(&ws).await?;
        assert!(!b.store.store_page(&ws, &page).await?);
        assert!(b.store.get_workspace(&ws).await?.is_none());
        assert!(matches!(
            b.core.sync_once(&ws, &|_, _| {}).await,
            Err(SyncError::Stop {
                reason: StopReason::Forgotten,
                ..
            })
        ));
        Ok(())
    })
}

#[test]
fn an_imported_backup_is_queued_in_pushable_pieces_and_a_lone_oversized_edit_stops_with_an_action(
) -> R {
    block_on(async {
        let big = Engine::create(MemoryStore::new(), "Big").await?;
        for i in 0..40 {
            let id = big.create_note(&format!("note {i}")).await?;
            big.splice_text(&id, Field::Body, 0, 0, &"x".repeat(20_000))
                .await?;
        }
        let backup = big.export_backup()?;
        let server = MemoryServer::new();
        server.set_limits(Limits {
            max_push: 300 * 1024,
            ..Limits::default()
        });
        let store = MemoryStore::new();
        let restored = Engine::import_backup(store.clone(), &backup, None).await?;
        let ws = restored.id();
        let pending = store.pending(&ws).await?;
        assert!(pending.len() > 2, "split into {} pieces", pending.len());
        assert!(pending.iter().all(|p| p.bytes.len() <= 300 * 1024));
        crate::sync::connect(&store, &server, SERVER, &ws).await?;
        let core = SyncCore::new(store.clone(), server.clone());
        core.sync_once(&ws, &|_, _| {}).await?;
        assert!(store.pending(&ws).await?.is_empty());
        let b = Device::member(&server, &store, &ws, Role::Write).await?;
        b.sync().await?;
        assert_eq!(b.engine.notes(), restored.notes());
        // One edit larger than the server accepts, alone: a stop with an action, not a retry loop.
        let id = restored.create_note("huge").await?;
        restored
            .splice_text(&id, Field::Body, 0, 0, &"y".repeat(400 * 1024))
            .await?;
        let err = core.sync_once(&ws, &|_, _| {}).await;
        assert!(
            matches!(&err, Err(e) if e.stop_reason() == Some(StopReason::TooLarge)),
            "{err:?}"
        );
        Ok(())
    })
}

#[test]
fn pending_keys_follow_the_order_edits_were_made_across_tabs() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let a = Engine::create(store.clone(), "W").await?;
        let b = Engine::open(store.clone(), &a.id()).await?;
        let mut made = Vec::new();
        for i in 0..6 {
            let tab = if i % 2 == 0 { &a } else { &b };
            tab.create_note(&format!("{i}")).await?;
            made.push(store.pending(&a.id()).await?.len());
        }
        let keys: Vec<String> = store
            .pending(&a.id())
            .await?
            .into_iter()
            .map(|p| p.key)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // A's first edit joins the update of the notebook's creation (same tab, nothing sent,
        // the last one appended); after that the tabs alternate, so each edit appends one.
        assert_eq!(
            made,
            vec![1, 2, 3, 4, 5, 6],
            "each edit appended one, in order"
        );
        Ok(())
    })
}

#[test]
fn a_compaction_snapshot_holds_what_the_server_has_and_no_unsent_edit() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        for i in 0..(super::sync::COMPACT_AFTER + 5) {
            b.engine.create_note(&format!("b{i}")).await?;
            b.sync().await?; // one record each (unsent edits would merge into one)
        }
        a.engine.create_note("not sent yet").await?;
        a.core.pull(&ws).await?;
        a.engine.refresh().await?;
        assert!(a.engine.compact_if_due().await?);
        let (covers, snapshot) = a.store.outbox(&ws).await?.ok_or("nothing to upload")?;
        assert_eq!(
            covers,
            a.store
                .get_workspace(&ws)
                .await?
                .ok_or("missing")?
                .last_pulled_seq
        );
        // Sealed for the server: opens with the notebook's key only.
        assert!(shared_schema::seal::is_sealed(&snapshot));
        let doc = LoroDoc::new();
        doc.import(&crate::keys::readable(
            &a.engine.record(),
            &snapshot,
            Some(1),
        )?)?;
        let titles: Vec<String> = model::notes(&doc).into_iter().map(|n| n.title).collect();
        assert_eq!(titles.len(), super::sync::COMPACT_AFTER + 5);
        assert!(!titles.contains(&"not sent yet".to_string()));
        // The worker uploads it; a new device starts from it and still gets the later edit.
        a.sync().await?;
        assert_eq!(server.records(&ws)[0].kind, PullRecordKind::Snapshot);
        let c = Device::member(&server, &a.store, &ws, Role::Read).await?;
        c.sync().await?;
        assert_eq!(c.engine.notes().len(), super::sync::COMPACT_AFTER + 6);
        Ok(())
    })
}

#[test]
fn refresh_refuses_a_document_from_a_newer_app_like_open() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let a = Device::owner(&server).await?;
        let ws = a.engine.id();
        let b = Device::member(&server, &a.store, &ws, Role::Write).await?;
        let newer = LoroDoc::new();
        newer.import(&a.engine.snapshot()?)?;
        newer.set_peer_id(99)?;
        newer
            .get_map("meta")
            .insert("schema_version", model::SCHEMA_VERSION + 1)?;
        newer.commit();
        let token = server.mint(&ws, Role::Write);
        push_raw(
            &server,
            &ws,
            &token,
            &[(
                "newer",
                &crate::keys::sealed(&a.engine.record(), newer.export(ExportMode::all_updates())?)?,
            )],
        )
        .await?;
        b.core.sync_once(&ws, &|_, _| {}).await?;
        assert!(matches!(
            b.engine.refresh().await,
            Err(EngineError::Model(model::ModelError::TooNew { .. }))
        ));
        Ok(())
    })
}

#[test]
fn a_registration_whose_reply_was_lost_is_repeated_and_gets_the_same_master_token() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let store = MemoryStore::new();
        let engine = Engine::create(store.clone(), "W").await?;
        let ws = engine.id();
        // The device stored its secret and the server registered the workspace, but the reply
        // never arrived.
        store
            .update_workspace(&ws, &Change::CreationSecret("secret-of-this-device".into()))
            .await?;
        let lost = server.create(SERVER, &ws, "secret-of-this-device").await?;
        let record = crate::sync::connect(&store, &server, SERVER, &ws).await?;
        assert_eq!(record.token.as_deref(), Some(lost.master_token.as_str()));
        assert_eq!(record.role, Role::Master);
        // Nobody else can claim the id.
        assert!(server.create(SERVER, &ws, "another-secret").await.is_err());
        Ok(())
    })
}

#[test]
fn offline_keystrokes_merge_into_few_pending_updates_that_keep_every_edit() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W").await?;
        let ws = e.id();
        let id = e.create_note("typed offline").await?;
        let text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
        for (i, c) in text.chars().enumerate() {
            e.splice_text(&id, Field::Body, i, i, &c.to_string())
                .await?;
        }
        let pending = store.pending(&ws).await?;
        let stored: usize = pending.iter().map(|p| p.bytes.len()).sum();
        let covering = e.doc().export(loro::ExportMode::all_updates())?.len();
        assert!(
            pending.len() <= 1 + stored / MAX_RUN_BYTES + 1,
            "{} keystrokes left {} pending updates",
            text.len(),
            pending.len()
        );
        assert!(
            stored <= 2 * covering,
            "pending {stored} B vs one covering update {covering} B"
        );
        // What a fresh device gets from exactly these updates is everything, edit by edit.
        let fresh = loro::LoroDoc::new();
        for p in &pending {
            fresh.import(&crate::keys::readable(&e.record(), &p.bytes, None)?)?;
        }
        assert_eq!(model::notes(&fresh), e.notes());
        assert!(
            e.history().len() > text.len(),
            "every keystroke is a version"
        );
        let reopened = Engine::open(store.clone(), &ws).await?;
        assert_eq!(reopened.notes(), e.notes());
        Ok(())
    })
}

#[test]
fn an_edit_is_never_merged_into_an_update_a_push_may_have_sent() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        let note = owner.engine.create_note("n").await?;
        owner.sync().await?;
        owner
            .engine
            .splice_text(&note, Field::Body, 0, 0, "a")
            .await?;
        let read = owner.store.pending_to_push(&ws).await?.pending;
        assert_eq!(read.len(), 1);
        // The push is in flight (the worker read the update); the next keystroke must not
        // replace it, or the server would keep only the smaller one under its key.
        owner
            .engine
            .splice_text(&note, Field::Body, 1, 1, "b")
            .await?;
        owner
            .engine
            .splice_text(&note, Field::Body, 2, 2, "c")
            .await?;
        let now = owner.store.pending(&ws).await?;
        assert_eq!(
            now.len(),
            2,
            "the read update stays, later edits merge after it"
        );
        assert_eq!(now[0], read[0]);
        owner.sync().await?;
        let reader = Device::member(&server, &owner.store, &ws, Role::Read).await?;
        reader.sync().await?;
        assert_eq!(
            reader.engine.note(&note).map(|n| n.body),
            Some("abc".into())
        );
        Ok(())
    })
}

#[test]
fn a_notebook_that_needs_its_migration_opens_on_a_full_disk() -> R {
    block_on(async {
        let server = MemoryServer::new();
        let owner = Device::owner(&server).await?;
        let ws = owner.engine.id();
        owner.sync().await?;
        // A member edits before its first pull: its document has no schema yet, so the next
        // open migrates — and the disk is full by then.
        let member = Device::member(&server, &owner.store, &ws, Role::Write).await?;
        let note = member.engine.create_note("offline first").await?;
        member.store.set_quota_full(true);
        let reopened = Engine::open(member.store.clone(), &ws).await?;
        assert_eq!(
            reopened.note(&note).map(|n| n.title),
            Some("offline first".into())
        );
        // Once space is freed, the next open makes the migration edit.
        member.store.set_quota_full(false);
        let pending = member.store.pending(&ws).await?.len();
        Engine::open(member.store.clone(), &ws).await?;
        assert!(member.store.pending(&ws).await?.len() > pending);
        Ok(())
    })
}
