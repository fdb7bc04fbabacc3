//! The C example (`examples/notes.c`) compiled with the system's C compiler against
//! `include/hearth.h` and `libhearth_ffi`, run against a real server: it joins a share link,
//! prints the owner's notes, adds and edits one, syncs — and the owner reads it.

use client_native::{ReqwestHttp, SqliteStore};
use client_wasm::sync::SyncCore;
use client_wasm::Engine;
use shared_schema::model::Field;
use std::path::PathBuf;

type R = Result<(), Box<dyn std::error::Error>>;

/// The folder cargo put `libhearth_ffi.so` in: `deps/` beside this test binary (a test build
/// leaves it there; `cargo build` also copies it up to `target/debug`).
fn library_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let deps = exe.parent().ok_or("no target folder")?;
    [deps.to_owned(), deps.join("..")]
        .into_iter()
        .find(|d| d.join("libhearth_ffi.so").exists())
        .ok_or_else(|| format!("no libhearth_ffi.so in {} or its parent", deps.display()).into())
}

#[actix_web::test]
async fn the_c_example_joins_syncs_and_prints_notes_through_the_c_api() -> R {
    let dir = std::env::temp_dir().join(format!("hearth-ffi-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let running =
        hearth_server::app::start(hearth_server::Config::for_tests(dir.join("server"), None))
            .await?;
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);

    // The owner: a notebook with one note, shared with a write link.
    let http = ReqwestHttp::new();
    let owner = SqliteStore::in_memory()?;
    let engine = Engine::create(owner.clone(), "Shared").await?;
    let ws = engine.id();
    client_wasm::sync::connect(&owner, &http, &url, &ws).await?;
    engine.refresh().await?;
    let note = engine.create_note("Owner's note").await?;
    engine
        .splice_text(&note, Field::Body, 0, 0, "from the owner")
        .await?;
    let core = SyncCore::new(owner.clone(), http.clone());
    core.sync_once(&ws, &|_, _| {}).await?;
    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Write,
        expires_in: None,
        label: "c".into(),
    };
    let shared = client_wasm::sync::keys::share(&owner, &http, &ws, &request).await?;
    let key = shared.key.map(|k| k.to_text());
    let link = shared_schema::link::format(&url, &ws, &shared.minted.token, key.as_deref());

    // Compile the example against the header and the library, as a C user would.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir()?;
    let program = dir.join("notes");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = tokio::process::Command::new(&cc)
        .arg(manifest.join("examples/notes.c"))
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(manifest.join("include"))
        .arg("-L")
        .arg(&lib)
        .arg("-lhearth_ffi")
        .arg("-o")
        .arg(&program)
        .output()
        .await?;
    assert!(
        compiled.status.success(),
        "{cc}: {}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let run = tokio::process::Command::new(&program)
        .arg(dir.join("c.db"))
        .arg(&link)
        .arg("A note from C")
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .await?;
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains(&format!("notebook {ws}")), "{out}");
    let notes = out
        .lines()
        .find_map(|l| l.strip_prefix("notes "))
        .ok_or("no notes line")?;
    let notes: Vec<shared_schema::model::Note> = serde_json::from_str(notes)?;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "from the owner");
    let status = out
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .ok_or("no status line")?;
    let status: serde_json::Value = serde_json::from_str(status)?;
    assert_eq!(status["pending"], 0, "everything acknowledged: {status}");
    assert_eq!(status["role"], "write");
    assert!(out.contains("refused no_note: "), "{out}");

    // The owner reads what the C program wrote.
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    assert!(engine
        .notes()
        .iter()
        .any(|n| n.title == "A note from C" && n.body == "written in C, then edited"));

    // A bad link: exit 1 with the code on stderr.
    let bad = tokio::process::Command::new(&program)
        .arg(dir.join("other.db"))
        .arg("https://example.com/nope")
        .arg("x")
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .await?;
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("join: not_a_link: "));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
