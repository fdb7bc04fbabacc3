//! Native tests of the engine on the in-memory store.

use super::*;
use crate::storage::MemoryStore;
use futures::executor::block_on;
use shared_schema::frame::{PullRecord, PullRecordKind};

type R = Result<(), Box<dyn std::error::Error>>;

/// Pretends to be the server: turns pending updates into pull records with seqs and chains.
struct FakeLog {
    chain: Chain,
    records: Vec<PullRecord>,
}

impl FakeLog {
    fn new() -> Self {
        Self {
            chain: Chain::genesis(),
            records: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.chain = self.chain.next(bytes);
        self.records.push(PullRecord {
            kind: PullRecordKind::Update,
            seq: self.records.len() as u64 + 1,
            chain: self.chain,
            bytes: bytes.to_vec(),
        });
    }

    /// Pushes and acknowledges everything pending on `engine`.
    async fn push_pending(&mut self, engine: &Engine<MemoryStore>) -> Result<(), EngineError> {
        let pending = engine.pending_updates().await?;
        for p in &pending {
            self.push(&p.bytes);
        }
        let keys: Vec<String> = pending.into_iter().map(|p| p.key).collect();
        engine.acknowledge(&keys).await
    }
}

#[test]
fn a_new_workspace_is_migrated_named_and_pending() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "Home", 1).await?;
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
        let e = Engine::create(store.clone(), "W", 1).await?;
        let id = e.create_note("Title").await?;
        e.splice_text(&id, Field::Body, 0, 0, "body").await?;
        e.add_task(&id, "t1").await?;
        e.add_task(&id, "t2").await?;
        e.set_task_done(&id, 0, true).await?;
        e.move_task(&id, 1, 0).await?;
        e.set_tag(&id, "x", true).await?;
        e.set_pinned(&id, true).await?;
        e.set_trashed(&id, true).await?;
        e.set_trashed(&id, false).await?;
        let ws = e.id();
        let expected = e.notes();
        drop(e);
        let reopened = Engine::open(store, &ws).await?;
        assert_eq!(reopened.notes(), expected);
        assert_eq!(expected[0].tasks[0].text, "t2");
        Ok(())
    })
}

#[test]
fn a_full_quota_fails_the_edit_and_keeps_what_was_stored() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W", 1).await?;
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
fn a_read_only_member_cannot_edit() -> R {
    block_on(async {
        let store = MemoryStore::new();
        let e = Engine::create(store.clone(), "W", 1).await?;
        e.set_remote(Some("http://x".into()), Some("t".into()), Role::Read)
            .await?;
        assert!(matches!(
            e.create_note("no").await,
            Err(EngineError::ReadOnly)
        ));
        Ok(())
    })
}

#[test]
fn remote_updates_apply_after_the_chain_checks_and_notify_subscribers() -> R {
    block_on(async {
        let a = Engine::create(MemoryStore::new(), "W", 1).await?;
        let id = a.create_note("from a").await?;
        let mut log = FakeLog::new();
        log.push_pending(&a).await?;
        let record = WorkspaceRecord {
            peer_id: 2,
            ..a.record()
        };
        let b = Engine::join(MemoryStore::new(), record).await?;
        let seen = Rc::new(std::cell::Cell::new(0));
        let s = seen.clone();
        b.subscribe(move |o| {
            if o == Origin::Remote {
                s.set(s.get() + 1)
            }
        });
        let out = b.apply_remote(&log.records).await?;
        assert_eq!(out.last_pulled_seq, log.records.len() as u64);
        assert_eq!(b.note(&id).map(|n| n.title), Some("from a".into()));
        assert_eq!(seen.get(), 1);
        // Replaying the same page is a no-op.
        assert_eq!(b.apply_remote(&log.records).await?.applied, 0);
        Ok(())
    })
}

#[test]
fn a_tampered_pull_is_a_chain_mismatch_and_imports_nothing() -> R {
    block_on(async {
        let a = Engine::create(MemoryStore::new(), "W", 1).await?;
        a.create_note("secret").await?;
        let mut log = FakeLog::new();
        log.push_pending(&a).await?;
        let mut records = log.records.clone();
        let last = records.len() - 1;
        let n = records[last].bytes.len() - 1;
        records[last].bytes[n] ^= 0x01;
        let b = Engine::join(
            MemoryStore::new(),
            WorkspaceRecord {
                peer_id: 2,
                ..a.record()
            },
        )
        .await?;
        let err = b.apply_remote(&records).await;
        assert!(matches!(err, Err(EngineError::Chain(_))));
        assert!(b.notes().is_empty());
        assert_eq!(b.record().last_pulled_seq, 0);
        Ok(())
    })
}

#[test]
fn a_gap_in_pulled_seqs_is_refused() -> R {
    block_on(async {
        let a = Engine::create(MemoryStore::new(), "W", 1).await?;
        a.create_note("x").await?;
        let mut log = FakeLog::new();
        log.push_pending(&a).await?;
        let b = Engine::join(
            MemoryStore::new(),
            WorkspaceRecord {
                peer_id: 2,
                ..a.record()
            },
        )
        .await?;
        let err = b.apply_remote(&log.records[1..]).await;
        assert!(matches!(
            err,
            Err(EngineError::OutOfOrder {
                expected: 1,
                got: 2
            })
        ));
        Ok(())
    })
}

#[test]
fn compaction_keeps_the_state_and_clears_received() -> R {
    block_on(async {
        let a = Engine::create(MemoryStore::new(), "W", 1).await?;
        a.create_note("n").await?;
        let mut log = FakeLog::new();
        log.push_pending(&a).await?;
        let store = MemoryStore::new();
        let b = Engine::join(
            store.clone(),
            WorkspaceRecord {
                peer_id: 2,
                ..a.record()
            },
        )
        .await?;
        b.apply_remote(&log.records).await?;
        b.compact().await?;
        let ws = b.id();
        let state = store.load(&ws).await?.ok_or("missing")?;
        assert!(state.received.is_empty());
        assert!(state.snapshot.is_some());
        let expected = b.notes();
        drop(b);
        assert_eq!(Engine::open(store, &ws).await?.notes(), expected);
        Ok(())
    })
}

#[test]
fn history_lists_versions_and_restores_an_overwritten_note() -> R {
    block_on(async {
        let e = Engine::create(MemoryStore::new(), "W", 1).await?;
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
        let e = Engine::create(MemoryStore::new(), "Trip", 1).await?;
        let id = e.create_note("Packing").await?;
        e.add_task(&id, "passport").await?;
        let bytes = e.export_backup()?;
        let restored = Engine::import_backup(MemoryStore::new(), &bytes, None, 5).await?;
        assert_ne!(restored.id(), e.id());
        assert_eq!(restored.notes(), e.notes());
        assert_eq!(restored.name(), "Trip");
        assert!(
            !restored.pending_updates().await?.is_empty(),
            "restored data will be pushed"
        );
        assert!(
            Engine::import_backup(MemoryStore::new(), b"garbage", None, 6)
                .await
                .is_err()
        );
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
    async fn apply(e: &Engine<MemoryStore>, op: &Op) {
        let notes = e.notes();
        let pick = |i: usize| notes.get(i % notes.len().max(1)).cloned();
        let _ = match op.clone() {
            Op::Create(t) => e.create_note(&t).await.map(|_| ()),
            Op::Type { note, pos, text } => match pick(note) {
                Some(n) => {
                    let p = pos.min(n.body.chars().count());
                    e.splice_text(&n.id, Field::Body, p, p, &text).await
                }
                None => Ok(()),
            },
            Op::Delete { note, pos, len } => match pick(note) {
                Some(n) => {
                    let total = n.body.chars().count();
                    let s = pos.min(total);
                    e.splice_text(&n.id, Field::Body, s, (s + len).min(total), "")
                        .await
                }
                None => Ok(()),
            },
            Op::Task { note, text } => match pick(note) {
                Some(n) => e.add_task(&n.id, &text).await,
                None => Ok(()),
            },
            Op::Toggle { note, index } => match pick(note) {
                Some(n) if !n.tasks.is_empty() => {
                    e.set_task_done(&n.id, index % n.tasks.len(), true).await
                }
                _ => Ok(()),
            },
            Op::Move { note, from, to } => match pick(note) {
                Some(n) if !n.tasks.is_empty() => {
                    e.move_task(&n.id, from % n.tasks.len(), to % n.tasks.len())
                        .await
                }
                _ => Ok(()),
            },
            Op::Tag { note, tag, on } => match pick(note) {
                Some(n) => e.set_tag(&n.id, &tag, on).await,
                None => Ok(()),
            },
            Op::Pin { note, on } => match pick(note) {
                Some(n) => e.set_pinned(&n.id, on).await,
                None => Ok(()),
            },
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_edits_on_three_replicas_converge_in_any_exchange_order(
            rounds in proptest::collection::vec(
                (proptest::collection::vec((0..3usize, op()), 1..8), proptest::collection::vec((0..3usize, 0..3usize), 0..6)),
                1..5,
            )
        ) {
            block_on(async {
                let a = Engine::create(MemoryStore::new(), "P", 1).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut replicas = vec![a];
                for peer in 2..=3u64 {
                    let r = Engine::join(MemoryStore::new(), WorkspaceRecord { peer_id: peer, ..replicas[0].record() })
                        .await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    replicas.push(r);
                }
                for (ops, exchanges) in rounds {
                    for (who, op) in &ops {
                        apply(&replicas[*who], op).await;
                    }
                    // Partial, random-order exchanges between pairs (like flaky sync).
                    for (from, to) in exchanges {
                        let bytes = replicas[from].doc().export(ExportMode::all_updates()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        replicas[to].doc().import(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                }
                // Final full exchange, in a fixed but different order per replica.
                for to in 0..3 {
                    for from in (0..3).rev() {
                        let bytes = replicas[from].doc().export(ExportMode::all_updates()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        replicas[to].doc().import(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                }
                let first = replicas[0].notes();
                for r in &replicas[1..] {
                    prop_assert_eq!(&r.notes(), &first);
                    prop_assert_eq!(r.doc().get_deep_value(), replicas[0].doc().get_deep_value());
                }
                Ok(())
            })?;
        }
    }
}
