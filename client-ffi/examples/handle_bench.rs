//! Benchmark (prints a table, asserts nothing): a C API call on a notebook with a long history,
//! through a handle that keeps the notebook's engine (each call reads only what was stored since)
//! against opening the engine for the call — what every call did before the handle kept it, and
//! what a program pays that opens a handle per call. Release build:
//! `cargo run --release -p hearth-ffi --example handle_bench [EDITS]`.
// Called as a C program calls them: raw pointers (the crate denies unsafe code elsewhere).
#![allow(unsafe_code)]

use client_native::Client;
use client_wasm::Engine;
use hearth_ffi::{
    hearth_close, hearth_notes_json, hearth_open, hearth_set_text, hearth_string_free,
};
use shared_schema::model::Field;
use std::ffi::{c_char, CString};
use std::time::Instant;

type R = Result<(), Box<dyn std::error::Error>>;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> R {
    let edits: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(5_000);
    let reps = 30;
    let dir = std::env::temp_dir().join(format!("hearth-ffi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("notes.db");
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let client = Client::open(&path)?;
    // A notebook typed into `edits` times (each edit its own durable write), then reopened: its
    // open cache is current, as after any ordinary session.
    let (ws, note) = runtime.block_on(async {
        let engine = Engine::create(client.store.clone(), "Bench").await?;
        let note = engine.create_note("typed").await?;
        for i in 0..edits {
            let at = i % 97;
            engine
                .splice_text(&note, Field::Body, at.min(i), at.min(i), "x")
                .await?;
        }
        Ok::<_, client_wasm::error::EngineError>((engine.id(), note))
    })?;
    drop(runtime.block_on(client.engine(&ws))?);

    // Baseline: the engine opened for each call.
    let mut open_list = Vec::new();
    let mut open_edit = Vec::new();
    for i in 0..reps {
        let t = Instant::now();
        let engine = runtime.block_on(client.engine(&ws))?;
        let json = serde_json::to_string(&engine.notes())?;
        open_list.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(json);
        let t = Instant::now();
        let engine = runtime.block_on(client.engine(&ws))?;
        let base = engine.note(&note).ok_or("note")?.body;
        let new = format!("{base}{}", i % 10);
        runtime.block_on(engine.set_text(&note, Field::Body, &base, &new))?;
        open_edit.push(t.elapsed().as_secs_f64() * 1e3);
    }

    // The handle: the same calls through the C API.
    let c_path = CString::new(path.to_str().ok_or("path")?)?;
    let (c_note, c_body) = (CString::new(note.as_str())?, CString::new("body")?);
    let mut error: *mut c_char = std::ptr::null_mut();
    let (mut kept_list, mut kept_edit, first);
    // SAFETY: valid NUL-terminated strings, a writable error pointer; every returned string is
    // freed once; the handle is closed once.
    unsafe {
        let h = hearth_open(c_path.as_ptr(), &mut error);
        if h.is_null() {
            return Err("hearth_open failed".into());
        }
        let t = Instant::now();
        hearth_string_free(hearth_notes_json(h, std::ptr::null(), &mut error));
        first = t.elapsed().as_secs_f64() * 1e3;
        kept_list = Vec::new();
        kept_edit = Vec::new();
        for i in 0..reps {
            let t = Instant::now();
            let json = hearth_notes_json(h, std::ptr::null(), &mut error);
            kept_list.push(t.elapsed().as_secs_f64() * 1e3);
            if json.is_null() {
                return Err("hearth_notes_json failed".into());
            }
            // The value: the body with one more character (read as the previous row did).
            let body = std::ffi::CStr::from_ptr(json)
                .to_string_lossy()
                .into_owned();
            hearth_string_free(json);
            let notes: Vec<shared_schema::model::Note> = serde_json::from_str(&body)?;
            let base = notes.first().map(|n| n.body.clone()).unwrap_or_default();
            let value = CString::new(format!("{base}{}", i % 10))?;
            let t = Instant::now();
            let set = hearth_set_text(
                h,
                std::ptr::null(),
                c_note.as_ptr(),
                c_body.as_ptr(),
                value.as_ptr(),
                &mut error,
            );
            kept_edit.push(t.elapsed().as_secs_f64() * 1e3);
            if set != 0 {
                return Err("hearth_set_text failed".into());
            }
        }
        hearth_close(h);
    }
    println!(
        "\nC API on a notebook typed {edits} times (SQLite data file, release build; median of {reps})"
    );
    println!("| call | engine opened per call ms | handle keeps the engine ms | kept ÷ opened |");
    println!("|---|---:|---:|---:|");
    let (ol, kl) = (median(open_list), median(kept_list));
    let (oe, ke) = (median(open_edit), median(kept_edit));
    println!(
        "| list the notes (JSON) | {ol:.3} | {kl:.3} | {:.3} |",
        kl / ol
    );
    println!(
        "| set a note's body (one more character) | {oe:.3} | {ke:.3} | {:.3} |",
        ke / oe
    );
    println!("| the handle's first call (opens the engine) | | {first:.3} | |");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
