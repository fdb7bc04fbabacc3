//! Native half of the engine benchmark (`scripts/bench.sh`): for 1k, 10k and 100k typed edits,
//! prints machine-readable lines the script joins with the browser half.
//! `NATIVE n=… import_ms=… snapshot_bytes=… pending_bytes=… pending_count=… covering_bytes=… edit_p50_us=… edit_p99_us=…`
//! (`covering_bytes`: one Loro update covering every edit — the floor for the pending queue).
//! Then one `BIGNOTE …` line: a member device opening a notebook where a 1 MB paste arrived
//! next to its own concurrent edit, against the same device opening a notebook with one empty
//! note (both synced through the in-memory server, best of 3 opens).
//! Then `SEAL …` (end-to-end encryption: sealing and opening a one-character edit's update against
//! making the edit, bytes added) and `ROTATE …` (revoking a link of a 10,000-edit notebook with 20
//! links: the key rotation, and sealing the compaction snapshot under the new key).

use client_wasm::bench::paste_beside_concurrent_edit;
use client_wasm::bench::typing_trace;
use client_wasm::storage::{MemoryStore, OpenCache, Store};
use client_wasm::Engine;
use futures::executor::block_on;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--write-backups DIR`: also write each workspace as a backup file (for the UI benchmark).
    let args: Vec<String> = std::env::args().collect();
    let backups = args
        .iter()
        .position(|a| a == "--write-backups")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    for n in [1_000usize, 10_000, 100_000] {
        block_on(async {
            let store = MemoryStore::new();
            let engine = Engine::create(store.clone(), "bench").await?;
            let trace = typing_trace(n);
            let id = engine.create_note("Benchmark").await?;
            let mut lat = Vec::with_capacity(n);
            for e in &trace {
                let t = Instant::now();
                engine
                    .splice_text(
                        &id,
                        shared_schema::model::Field::Body,
                        e.start,
                        e.end,
                        &e.text,
                    )
                    .await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat.sort_unstable();
            if let Some(dir) = &backups {
                std::fs::create_dir_all(dir)?;
                std::fs::write(
                    dir.join(format!("bench-{n}.hearth")),
                    engine.export_backup()?,
                )?;
            }
            let pending = store.pending(&engine.id()).await?;
            let pending_bytes: usize = pending.iter().map(|p| p.bytes.len()).sum();
            let snapshot = engine.snapshot()?;
            let covering = engine.doc().export(loro::ExportMode::all_updates())?.len();
            // Native Loro import of the same snapshot bytes: the floor for "open".
            let runs = 5;
            let mut best = f64::MAX;
            for _ in 0..runs {
                let t = Instant::now();
                let doc = loro::LoroDoc::new();
                doc.import(&snapshot)?;
                let _ = shared_schema::model::notes(&doc);
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "NATIVE n={n} import_ms={best:.3} snapshot_bytes={} pending_bytes={pending_bytes} pending_count={} covering_bytes={covering} edit_p50_us={} edit_p99_us={}",
                snapshot.len(),
                pending.len(),
                lat[lat.len() / 2],
                lat[lat.len() * 99 / 100]
            );
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    block_on(big_note())?;
    block_on(sealing())?;
    block_on(rotation())
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `SEAL` line: 2,000 one-character edits of a note; each edit's time, and sealing and opening
/// its update (the engine seals inside the edit; measured here on the update's own bytes).
async fn sealing() -> Res<()> {
    let store = MemoryStore::new();
    let engine = Engine::create(store.clone(), "seal").await?;
    let id = engine.create_note("n").await?;
    let record = engine.record();
    let (mut edit, mut seal, mut open, mut added) = (vec![], vec![], vec![], vec![]);
    for i in 0..2_000 {
        let vv = engine.doc().oplog_vv();
        let t = Instant::now();
        engine
            .splice_text(&id, shared_schema::model::Field::Body, i, i, "x")
            .await?;
        edit.push(t.elapsed().as_secs_f64() * 1e6);
        let update = engine.doc().export(loro::ExportMode::updates(&vv))?;
        let t = Instant::now();
        let sealed = client_wasm::keys::sealed(&record, update.clone())?;
        seal.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        let opened = client_wasm::keys::readable(&record, &sealed, Some(1))?;
        open.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(opened.as_ref(), update.as_slice());
        added.push((sealed.len() - update.len()) as f64);
    }
    println!(
        "SEAL edits=2000 edit_p50_us={:.1} seal_p50_us={:.2} open_p50_us={:.2} bytes_added_p50={:.0}",
        p50(edit),
        p50(seal),
        p50(open),
        p50(added)
    );
    Ok(())
}

/// The `ROTATE` line: an owner with a 10,000-edit notebook and 20 links revokes one.
async fn rotation() -> Res<()> {
    use client_wasm::sync::{keys, memory::MemoryServer, SyncCore};
    let server = MemoryServer::new();
    let store = MemoryStore::new();
    let engine = Engine::create(store.clone(), "rotate").await?;
    let ws = engine.id();
    let id = engine.create_note("typed").await?;
    for e in &typing_trace(10_000) {
        engine
            .splice_text(
                &id,
                shared_schema::model::Field::Body,
                e.start,
                e.end,
                &e.text,
            )
            .await?;
    }
    client_wasm::sync::connect(&store, &server, "http://memory", &ws).await?;
    let core = SyncCore::new(store.clone(), server.clone());
    core.sync_once(&ws, &|_, _| {}).await?;
    let mut links = Vec::new();
    for _ in 0..20 {
        let request = shared_schema::api::MintTokenRequest {
            role: shared_schema::Role::Write,
            expires_in: None,
            label: "bench".into(),
        };
        links.push(keys::share(&store, &server, &ws, &request).await?.minted.id);
    }
    let t = Instant::now();
    let epoch = keys::revoke(&store, &server, &ws, &links[0]).await?;
    let rotate = t.elapsed().as_secs_f64() * 1e3;
    engine.refresh().await?;
    let t = Instant::now();
    engine.compact().await?;
    let compact = t.elapsed().as_secs_f64() * 1e3;
    let snapshot = engine.snapshot()?;
    let t = Instant::now();
    let sealed = client_wasm::keys::sealed(&engine.record(), snapshot.clone())?;
    let seal = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "ROTATE edits=10000 links=20 epoch={} rotate_ms={rotate:.2} compact_ms={compact:.2} snapshot_bytes={} seal_snapshot_ms={seal:.3} sealed_bytes={}",
        epoch.unwrap_or(0),
        snapshot.len(),
        sealed.len()
    );
    Ok(())
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Best of 3 opens of `ws` from `store`, in ms.
async fn best_open(store: &MemoryStore, ws: &str) -> Res<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let e = Engine::open(store.clone(), ws).await?;
        let _ = e.notes();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// B's store and workspace after [`paste_beside_concurrent_edit`], and how long B's engine took
/// to read the paste (ms).
async fn two_devices(chars: usize) -> Res<(MemoryStore, String, f64)> {
    let store = MemoryStore::new();
    let (ws, b) = paste_beside_concurrent_edit(store.clone(), chars).await?;
    let t = Instant::now();
    b.refresh().await?;
    Ok((store, ws, t.elapsed().as_secs_f64() * 1e3))
}

/// The `BIGNOTE` line (issue "product", defect 1).
async fn big_note() -> Res<()> {
    let (empty_store, empty_ws, _) = two_devices(0).await?;
    let empty = best_open(&empty_store, &empty_ws).await?;
    let (store, ws, receive) = two_devices(1_000_000).await?;
    let cached = best_open(&store, &ws).await?;
    // The same open without the cache (an unreadable one is ignored): what every open cost before.
    let none = OpenCache {
        since: Default::default(),
        snapshot: b"none".to_vec(),
    };
    store.save_open_cache(&ws, &none).await?;
    let t = Instant::now();
    let _ = Engine::open(store.clone(), &ws).await?.notes();
    let replay = t.elapsed().as_secs_f64() * 1e3;
    println!("BIGNOTE chars=1000000 empty_open_ms={empty:.2} open_ms={cached:.2} replay_open_ms={replay:.1} receive_ms={receive:.1}");
    Ok(())
}
