//! Native half of the engine benchmark (`scripts/bench.sh`): for 1k, 10k and 100k typed edits,
//! prints machine-readable lines the script joins with the browser half.
//! `NATIVE n=… import_ms=… snapshot_bytes=… pending_bytes=… pending_count=… covering_bytes=… edit_p50_us=… edit_p99_us=…`
//! (`covering_bytes`: one Loro update covering every edit — the floor for the pending queue).

use client_wasm::bench::typing_trace;
use client_wasm::storage::{MemoryStore, Store};
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
    Ok(())
}
