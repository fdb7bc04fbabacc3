//! Native half of the engine benchmark (`scripts/bench.sh`): for 1k, 10k and 100k typed edits,
//! prints machine-readable lines the script joins with the browser half.
//! `NATIVE n=… import_ms=… snapshot_bytes=… pending_bytes=… pending_count=… covering_bytes=… edit_p50_us=… edit_p99_us=…`
//! (`covering_bytes`: one Loro update covering every edit — the floor for the pending queue).
//! Then one `BIGNOTE …` line: a member device opening a notebook where a 1 MB paste arrived
//! next to its own concurrent edit, against the same device opening a notebook with one empty
//! note (both synced through the in-memory server, best of 3 opens).

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
    block_on(big_note())
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
