//! The `hearth` command line against a real server: a notebook made on another device is joined
//! from its share link, read, edited and synced back; a revoked link and a bad link are one-line
//! errors with their codes.

use client_native::{ReqwestHttp, SqliteStore};
use client_wasm::storage::Store;
use client_wasm::sync::SyncCore;
use client_wasm::Engine;
use shared_schema::model::Field;

type R = Result<(), Box<dyn std::error::Error>>;

async fn server() -> Result<String, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let running = hearth_server::app::start(hearth_server::Config::for_tests(dir, None)).await?;
    let url = format!("http://{}", running.addr);
    actix_web::rt::spawn(running.server);
    Ok(url)
}

/// Runs `hearth` with `args` (async: the server runs on this test's thread).
async fn hearth(
    data: &std::path::Path,
    args: &[&str],
) -> Result<std::process::Output, std::io::Error> {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("HEARTH_DATA")
        .output()
        .await
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[actix_web::test]
async fn the_command_line_joins_reads_adds_and_syncs_a_notebook_from_a_share_link() -> R {
    let url = server().await?;
    let http = ReqwestHttp::new();
    let owner = SqliteStore::in_memory()?;
    let engine = Engine::create(owner.clone(), "Shared").await?;
    let ws = engine.id();
    client_wasm::sync::connect(&owner, &http, &url, &ws).await?;
    engine.refresh().await?;
    let note = engine.create_note("from the owner").await?;
    engine
        .splice_text(&note, Field::Body, 0, 0, "owner's text")
        .await?;
    let core = SyncCore::new(owner.clone(), http.clone());
    core.sync_once(&ws, &|_, _| {}).await?;
    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Write,
        expires_in: None,
        label: "terminal".into(),
    };
    let shared = client_wasm::sync::keys::share(&owner, &http, &ws, &request).await?;
    let key = shared.key.map(|k| k.to_text());
    let link = shared_schema::link::format(&url, &ws, &shared.minted.token, key.as_deref());

    let data = std::env::temp_dir().join(format!("hearth-cli-{}.db", uuid::Uuid::new_v4()));
    let joined = hearth(&data, &["--json", "join", &link]).await?;
    assert!(joined.status.success(), "{}", stderr(&joined));
    let info: serde_json::Value = serde_json::from_str(stdout(&joined).trim())?;
    assert_eq!(info["notebook"], ws.as_str());
    assert_eq!(info["notes"], 1);

    let listed = hearth(&data, &["--json", "notes", "list"]).await?;
    let notes: Vec<shared_schema::model::Note> = serde_json::from_str(stdout(&listed).trim())?;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].title.as_str(), notes[0].body.as_str()),
        ("from the owner", "owner's text")
    );
    let shown = hearth(&data, &["notes", "show", "from the owner"]).await?;
    assert!(stdout(&shown).contains("owner's text"));

    let added = hearth(
        &data,
        &[
            "notes",
            "add",
            "from the terminal",
            "--body",
            "typed in a shell",
        ],
    )
    .await?;
    assert!(added.status.success(), "{}", stderr(&added));
    let synced = hearth(&data, &["--json", "sync"]).await?;
    assert!(synced.status.success(), "{}", stderr(&synced));
    let round: serde_json::Value = serde_json::from_str(stdout(&synced).trim())?;
    assert!(round["pushed"].as_u64().unwrap_or(0) >= 1, "{round}");
    let status = hearth(&data, &["--json", "status"]).await?;
    let status: serde_json::Value = serde_json::from_str(stdout(&status).trim())?;
    assert_eq!(
        (
            &status["notebook"],
            &status["role"],
            &status["pending"],
            &status["seq"]
        ),
        (
            &ws.as_str().into(),
            &"write".into(),
            &0.into(),
            &round["seq"]
        ),
        "{status}"
    );
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    assert!(engine
        .notes()
        .iter()
        .any(|n| n.title == "from the terminal" && n.body == "typed in a shell"));

    // The same note edited on both sides before either syncs: CRDT edits, both kept.
    engine
        .splice_text(&note, Field::Body, 0, 0, "Owner first. ")
        .await?;
    let edited = hearth(
        &data,
        &[
            "notes",
            "edit",
            "from the owner",
            "--append",
            " Terminal last.",
            "--task",
            "reply",
            "--tag",
            "shared",
        ],
    )
    .await?;
    assert!(edited.status.success(), "{}", stderr(&edited));
    assert!(hearth(&data, &["sync"]).await?.status.success());
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    assert!(hearth(&data, &["sync"]).await?.status.success());
    let both = "Owner first. owner's text Terminal last.";
    let mine = engine
        .notes()
        .into_iter()
        .find(|n| n.id == note)
        .ok_or("note")?;
    assert_eq!(mine.body, both);
    let shown = hearth(&data, &["--json", "notes", "show", &note]).await?;
    let theirs: shared_schema::model::Note = serde_json::from_str(stdout(&shown).trim())?;
    assert_eq!(theirs, mine, "both sides converged");

    // Markdown export: one file per note, tasks as `- [ ]`, tags in front matter.
    let dir = std::env::temp_dir().join(format!("hearth-md-{}", uuid::Uuid::new_v4().simple()));
    let exported = hearth(
        &data,
        &["export", "--markdown", dir.to_str().ok_or("path")?],
    )
    .await?;
    assert!(exported.status.success(), "{}", stderr(&exported));
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()?;
    files.sort();
    assert_eq!(files.len(), 2);
    let owner_md = files
        .iter()
        .find(|f| f.contains("# from the owner"))
        .ok_or("the owner's note")?;
    assert!(owner_md.starts_with(&format!("---\nid: {note}\nversion: ")));
    assert!(owner_md.contains("tags: [\"shared\"]\n"));
    assert!(owner_md.contains(both) && owner_md.contains("- [ ] reply"));

    // An encrypted backup with its keys restores in another data file only with its passphrase.
    let backup = std::env::temp_dir().join(format!("hearth-{}.hearth", uuid::Uuid::new_v4()));
    let file = backup.to_str().ok_or("path")?;
    let saved = hearth(
        &data,
        &["backup", file, "--passphrase", "correct horse battery"],
    )
    .await?;
    assert!(saved.status.success(), "{}", stderr(&saved));
    let elsewhere = std::env::temp_dir().join(format!("hearth-cli-{}.db", uuid::Uuid::new_v4()));
    let none = hearth(&elsewhere, &["restore", file]).await?;
    assert!(
        !none.status.success() && stderr(&none).contains("passphrase"),
        "{}",
        stderr(&none)
    );
    let wrong = hearth(
        &elsewhere,
        &["restore", file, "--passphrase", "wrong horse battery"],
    )
    .await?;
    assert!(!wrong.status.success(), "{}", stdout(&wrong));
    let right = hearth(
        &elsewhere,
        &[
            "--json",
            "restore",
            file,
            "--passphrase",
            "correct horse battery",
        ],
    )
    .await?;
    assert!(right.status.success(), "{}", stderr(&right));
    let restored: serde_json::Value = serde_json::from_str(stdout(&right).trim())?;
    let id = restored["notebook"].as_str().ok_or("id")?;
    let listed = hearth(&elsewhere, &["--json", "--notebook", id, "notes", "list"]).await?;
    let notes: Vec<shared_schema::model::Note> = serde_json::from_str(stdout(&listed).trim())?;
    assert!(
        notes.iter().any(|n| n.body == both),
        "the restored copy holds the merged note"
    );
    for f in [&backup, &elsewhere] {
        let _ = std::fs::remove_file(f);
    }

    // Markdown import: the file's edits since its export are merged with an edit the owner
    // made meanwhile (not overwritten by the file's older text); a hand-written file is a note.
    engine
        .splice_text(&note, Field::Body, 0, 0, "Concurrent. ")
        .await?;
    core.sync_once(&ws, &|_, _| {}).await?;
    let owner_file = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|p| p.to_string_lossy().contains("from-the-owner"))
        .ok_or("the owner's file")?;
    let text = std::fs::read_to_string(&owner_file)?
        .replace("Terminal last.", "Terminal, edited in a file.")
        .replace("- [ ] reply", "- [x] reply\n- [ ] book tickets");
    std::fs::write(&owner_file, text)?;
    std::fs::write(dir.join("idea.md"), "# An idea\n\nwritten by hand\n")?;
    assert!(hearth(&data, &["sync"]).await?.status.success());
    let md = dir.to_str().ok_or("path")?;
    let imported = hearth(&data, &["--json", "import", "--markdown", md]).await?;
    assert!(imported.status.success(), "{}", stderr(&imported));
    let report: serde_json::Value = serde_json::from_str(stdout(&imported).trim())?;
    assert_eq!(
        (&report["created"], &report["updated"], &report["unchanged"]),
        (&1.into(), &1.into(), &1.into()),
        "{report}"
    );
    let merged = "Concurrent. Owner first. owner's text Terminal, edited in a file.";
    let rewritten = std::fs::read_to_string(&owner_file)?;
    assert!(rewritten.contains(merged), "{rewritten}");
    assert!(std::fs::read_to_string(dir.join("idea.md"))?.starts_with("---\nid: "));
    let again = hearth(&data, &["--json", "import", "--markdown", md]).await?;
    let report: serde_json::Value = serde_json::from_str(stdout(&again).trim())?;
    assert_eq!(
        report["unchanged"], 3,
        "importing again changes nothing: {report}"
    );
    assert!(hearth(&data, &["sync"]).await?.status.success());
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    let seen = engine.note(&note).ok_or("note")?;
    assert_eq!(seen.body, merged);
    let tasks: Vec<(&str, bool)> = seen
        .tasks
        .iter()
        .map(|t| (t.text.as_str(), t.done))
        .collect();
    assert_eq!(tasks, [("reply", true), ("book tickets", false)]);
    assert!(engine
        .notes()
        .iter()
        .any(|n| n.title == "An idea" && n.body == "written by hand"));
    std::fs::remove_dir_all(&dir)?;

    // A revoked link: one line with the code; the data file keeps the notebook.
    client_wasm::sync::keys::revoke(&owner, &http, &ws, &shared.minted.id).await?;
    let refused = hearth(&data, &["sync"]).await?;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("token_revoked"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stderr(&refused).trim().lines().count(), 1);
    let still = hearth(&data, &["--json", "notes", "list"]).await?;
    let notes: Vec<shared_schema::model::Note> = serde_json::from_str(stdout(&still).trim())?;
    assert_eq!(notes.len(), 3);
    // Not a link at all.
    let other = std::env::temp_dir().join(format!("hearth-cli-{}.db", uuid::Uuid::new_v4()));
    let bad = hearth(&other, &["join", "https://example.com/not-a-link"]).await?;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("not a Hearth share link"));
    for f in [&data, &other] {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = f.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// The next stdout line of a watching `hearth` matching `pred`, within 30 s.
async fn line_where(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if pred(&v) {
                return Ok::<_, Box<dyn std::error::Error>>(v);
            }
        }
        Err("hearth stopped printing".into())
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait).await?
}

#[actix_web::test]
async fn hearth_sync_watch_sees_edits_live_sends_its_own_and_stops_when_the_link_is_revoked() -> R {
    use tokio::io::AsyncBufReadExt as _;
    let url = server().await?;
    let http = ReqwestHttp::new();
    let owner = SqliteStore::in_memory()?;
    let engine = Engine::create(owner.clone(), "Live").await?;
    let ws = engine.id();
    client_wasm::sync::connect(&owner, &http, &url, &ws).await?;
    engine.refresh().await?;
    let core = SyncCore::new(owner.clone(), http.clone());
    core.sync_once(&ws, &|_, _| {}).await?;
    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Write,
        expires_in: None,
        label: "watcher".into(),
    };
    let shared = client_wasm::sync::keys::share(&owner, &http, &ws, &request).await?;
    let key = shared.key.map(|k| k.to_text());
    let link = shared_schema::link::format(&url, &ws, &shared.minted.token, key.as_deref());
    let data = std::env::temp_dir().join(format!("hearth-watch-{}.db", uuid::Uuid::new_v4()));
    assert!(hearth(&data, &["join", &link]).await?.status.success());

    let mut watcher = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--data")
        .arg(&data)
        .args(["--json", "sync", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(watcher.stdout.take().ok_or("stdout")?).lines();
    line_where(&mut lines, |v| v["event"] == "synced").await?;

    // An edit on the other device arrives live.
    engine.create_note("live from the owner").await?;
    core.sync_once(&ws, &|_, _| {}).await?;
    let head = owner
        .get_workspace(&ws)
        .await?
        .ok_or("owner")?
        .last_pulled_seq;
    line_where(&mut lines, |v| v["seq"].as_u64().is_some_and(|s| s >= head)).await?;
    let listed = hearth(&data, &["--json", "notes", "list"]).await?;
    assert!(
        stdout(&listed).contains("live from the owner"),
        "{}",
        stdout(&listed)
    );

    // A note added by another `hearth` process is sent by the watcher.
    assert!(hearth(&data, &["notes", "add", "added while watching"])
        .await?
        .status
        .success());
    line_where(&mut lines, |v| {
        v["event"] == "synced" && v["pushed"].as_u64().unwrap_or(0) >= 1
    })
    .await?;
    core.sync_once(&ws, &|_, _| {}).await?;
    engine.refresh().await?;
    assert!(engine
        .notes()
        .iter()
        .any(|n| n.title == "added while watching"));

    // Revoked: the watcher stops with the code.
    client_wasm::sync::keys::revoke(&owner, &http, &ws, &shared.minted.id).await?;
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), watcher.wait()).await??;
    assert!(!status.success());
    let mut err = String::new();
    if let Some(mut e) = watcher.stderr.take() {
        tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err).await?;
    }
    assert!(err.contains("token_revoked"), "{err}");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = data.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
