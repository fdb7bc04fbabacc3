//! Browser half of the engine benchmark (`scripts/bench.sh`, feature `bench`, release build):
//! open time from IndexedDB to first read, wasm Loro import of the same bytes, and edit latency
//! (call → durable in IndexedDB). Prints `BROWSER n=…` lines; asserts nothing about time.
#![cfg(all(target_arch = "wasm32", feature = "bench"))]

use client_wasm::bench::typing_trace;
use client_wasm::storage::{IdbStore, MemoryStore, Store};
use client_wasm::{Engine, EngineError};
use shared_schema::model::Field;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

#[wasm_bindgen_test]
async fn engine_benchmark() -> Result<(), EngineError> {
    for n in [1_000usize, 10_000, 100_000] {
        // Build the workspace in memory, then store it compacted in IndexedDB.
        let mem = Engine::create(MemoryStore::new(), "bench").await?;
        let id = mem.create_note("Benchmark").await?;
        for e in typing_trace(n) {
            mem.splice_text(&id, Field::Body, e.start, e.end, &e.text)
                .await?;
        }
        let snapshot = mem.snapshot()?;
        let name = format!("hearth-bench-{n}");
        IdbStore::delete_database(&name).await?;
        let store = IdbStore::open(&name).await?;
        store.create_workspace(&mem.record()).await?;
        store
            .compact(
                &mem.id(),
                &client_wasm::storage::Compaction {
                    snapshot: snapshot.clone(),
                    covers: 0,
                    upload: None,
                },
            )
            .await?;
        drop(store);
        // The first open of this database in this page (the engine's code is warm, the
        // database connection and its pages are not), then the best of three more (warm).
        let mut first_open_ms = 0.0;
        let mut open_ms = f64::MAX;
        let mut import_ms = f64::MAX;
        for round in 0..4 {
            let t = now();
            let engine = Engine::open(IdbStore::open(&name).await?, &mem.id()).await?;
            let notes = engine.notes();
            let took = now() - t;
            assert_eq!(notes.len(), 1);
            if round == 0 {
                first_open_ms = took;
            } else {
                open_ms = open_ms.min(took);
            }
            // The same-page baseline: Loro importing the same snapshot in wasm, no IndexedDB.
            let t = now();
            let doc = loro::LoroDoc::new();
            doc.import(&snapshot)?;
            let _ = shared_schema::model::notes(&doc);
            import_ms = import_ms.min(now() - t);
        }
        let engine = Engine::open(IdbStore::open(&name).await?, &mem.id()).await?;
        let mut lat = Vec::new();
        for i in 0..200 {
            let t = now();
            engine.splice_text(&id, Field::Body, i, i, "x").await?;
            lat.push(now() - t);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        console_log!(
            "BROWSER n={n} first_open_ms={first_open_ms:.2} open_ms={open_ms:.2} wasm_import_ms={import_ms:.2} edit_p50_ms={:.2} edit_p99_ms={:.2}",
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100]
        );
    }
    Ok(())
}

/// Best of 3 opens of `ws` from the IndexedDB database `name` → first read, in ms.
async fn best_open(name: &str, ws: &str) -> Result<f64, EngineError> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = now();
        let engine = Engine::open(IdbStore::open(name).await?, ws).await?;
        let _ = engine.notes();
        best = best.min(now() - t);
    }
    Ok(best)
}

/// A member device (IndexedDB) opening a notebook where a 1 MB paste arrived next to its own
/// concurrent edit, against the same for a notebook with one empty note. Prints one
/// `BROWSER_BIGNOTE …` line.
#[wasm_bindgen_test]
async fn big_note_benchmark() -> Result<(), String> {
    let mut opens = Vec::new();
    for chars in [0usize, 1_000_000] {
        let name = format!("hearth-bench-big-{chars}");
        IdbStore::delete_database(&name)
            .await
            .map_err(|e| e.to_string())?;
        let store = IdbStore::open(&name).await.map_err(|e| e.to_string())?;
        let (ws, b) = client_wasm::bench::paste_beside_concurrent_edit(store.clone(), chars)
            .await
            .map_err(|e| e.to_string())?;
        let t = now();
        b.refresh().await.map_err(|e| e.to_string())?;
        let receive_ms = now() - t;
        drop(b);
        opens.push(best_open(&name, &ws).await.map_err(|e| e.to_string())?);
        if chars > 0 {
            // Without the open cache (an unreadable one is ignored): what each open cost before.
            let none = client_wasm::storage::OpenCache {
                since: Default::default(),
                snapshot: b"none".to_vec(),
            };
            store
                .save_open_cache(&ws, &none)
                .await
                .map_err(|e| e.to_string())?;
            let t = now();
            let engine = Engine::open(IdbStore::open(&name).await.map_err(|e| e.to_string())?, &ws)
                .await
                .map_err(|e| e.to_string())?;
            let _ = engine.notes();
            let replay = now() - t;
            console_log!(
                "BROWSER_BIGNOTE chars={chars} empty_open_ms={:.2} open_ms={:.2} replay_open_ms={replay:.1} receive_ms={receive_ms:.1}",
                opens[0],
                opens[1]
            );
        }
    }
    Ok(())
}

/// End-to-end encryption in the page: 500 one-character edits to IndexedDB (each timed), and
/// sealing and opening their updates (timed in batches of 500: one call is below the clock's
/// resolution). Prints one `BROWSER_SEAL …` line.
#[wasm_bindgen_test]
async fn sealing_benchmark() -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let name = "hearth-bench-seal";
    IdbStore::delete_database(name).await.map_err(|x| e(&x))?;
    let engine = Engine::create(IdbStore::open(name).await.map_err(|x| e(&x))?, "seal")
        .await
        .map_err(|x| e(&x))?;
    let id = engine.create_note("n").await.map_err(|x| e(&x))?;
    let record = engine.record();
    let (mut edits, mut updates) = (Vec::new(), Vec::new());
    for i in 0..500 {
        let vv = engine.doc().oplog_vv();
        let t = now();
        engine
            .splice_text(&id, Field::Body, i, i, "x")
            .await
            .map_err(|x| e(&x))?;
        edits.push((now() - t) * 1e3);
        updates.push(
            engine
                .doc()
                .export(loro::ExportMode::updates(&vv))
                .map_err(|x| e(&x))?,
        );
    }
    let (mut seal, mut open, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = now();
        let sealed: Vec<Vec<u8>> = updates
            .iter()
            .map(|u| client_wasm::keys::sealed(&record, u.clone()))
            .collect::<Result<_, _>>()
            .map_err(|x| e(&x))?;
        seal.push((now() - t) * 1e3 / updates.len() as f64);
        let t = now();
        for s in &sealed {
            client_wasm::keys::readable(&record, s, Some(1)).map_err(|x| e(&x))?;
        }
        open.push((now() - t) * 1e3 / updates.len() as f64);
        added = sealed
            .iter()
            .zip(&updates)
            .map(|(s, u)| (s.len() - u.len()) as f64)
            .collect();
    }
    let p50 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    console_log!(
        "BROWSER_SEAL edits=500 edit_p50_us={:.1} seal_p50_us={:.2} open_p50_us={:.2} bytes_added_p50={:.0}",
        p50(edits),
        p50(seal),
        p50(open),
        p50(added)
    );
    Ok(())
}
