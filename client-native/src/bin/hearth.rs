//! `hearth`: a Hearth notebook from a terminal — join a share link, sync, read and add notes. The
//! sync is the browser's sync core (client-wasm) on a SQLite file (`client-native`).
//!
//! ```text
//! hearth join '<share link>'          store the notebook and its token (and key), then sync
//! hearth sync [--watch]               one round: push what is pending, pull what is new;
//!                                     --watch: stay live, a line per change
//! hearth notes list | show ID | add TITLE [--body TEXT]
//! hearth notes edit ID [--title T] [--body B] [--append A] [--task T] [--tag X]
//! hearth export --markdown DIR        one Markdown file per note
//! hearth backup FILE [--passphrase P] / hearth restore FILE [--passphrase P]
//! hearth list                         the notebooks in the data file
//! ```
//! `--json` prints JSON for scripts; errors are one line with the same codes as the server and
//! the browser (`token_revoked`, `chain_mismatch`, …) and exit status 1.

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use client_native::{ReqwestHttp, SqliteStore};
use client_wasm::storage::{Store, WorkspaceRecord};
use client_wasm::sync::{SyncCore, SyncError};
use client_wasm::Engine;
use shared_schema::model::Field;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "hearth", version, about = "A Hearth notebook from a terminal")]
struct Cli {
    /// The data file (SQLite) holding this device's notebooks.
    #[arg(long, env = "HEARTH_DATA", global = true)]
    data: Option<PathBuf>,
    /// The notebook (id) when the data file holds several.
    #[arg(long, global = true)]
    notebook: Option<String>,
    /// JSON output for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store a notebook from a share link (as the browser gets it) and sync it.
    Join {
        /// `https://host/#/join/{notebook}?t={token}&k={key}`
        link: String,
    },
    /// One sync round with the server; with `--watch`, stay live and print a line per change.
    Sync {
        /// Stay live (the server's live channel) until stopped.
        #[arg(long)]
        watch: bool,
    },
    /// The notebooks in the data file.
    List,
    /// Read, add or edit notes.
    Notes {
        #[command(subcommand)]
        command: NotesCommand,
    },
    /// Write every note as a Markdown file in a folder (one file per note, tasks as `- [ ]`,
    /// tags in front matter).
    Export {
        /// The folder (created if needed).
        #[arg(long)]
        markdown: PathBuf,
    },
    /// Save the notebook to a backup file (the app's format). Without a passphrase the file is
    /// readable by whoever has it; with one it is sealed and carries the notebook's keys behind
    /// the passphrase (Argon2id), like the app's "encrypted copy with its keys".
    Backup {
        /// The file to write.
        file: PathBuf,
        /// Seal the file and keep its keys behind this passphrase (at least 8 characters).
        #[arg(long, env = "HEARTH_PASSPHRASE")]
        passphrase: Option<String>,
    },
    /// Restore a backup file as a new notebook owned by this device.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The passphrase of an encrypted backup.
        #[arg(long, env = "HEARTH_PASSPHRASE")]
        passphrase: Option<String>,
        /// Its name (default: the backup's name + " (restored)").
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum NotesCommand {
    /// Every note (trash excluded).
    List,
    /// One note, by id or title.
    Show {
        /// Id or exact title.
        note: String,
    },
    /// A new note (stored at once; sent by the next `hearth sync`).
    Add {
        /// Title.
        title: String,
        /// Body text.
        #[arg(long, default_value = "")]
        body: String,
    },
    /// Change a note: CRDT edits of what changed, so a concurrent edit elsewhere is merged.
    Edit {
        /// Id or exact title.
        note: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New body (only the characters that differ are edited).
        #[arg(long)]
        body: Option<String>,
        /// Text added at the end of the body.
        #[arg(long)]
        append: Option<String>,
        /// A task added to the checklist.
        #[arg(long)]
        task: Option<String>,
        /// A tag added.
        #[arg(long)]
        tag: Option<String>,
    },
}

/// The note `key` names (id or exact title).
fn find_note(
    engine: &Engine<SqliteStore>,
    key: &str,
) -> anyhow::Result<shared_schema::model::Note> {
    engine
        .notes()
        .into_iter()
        .find(|n| n.id == key || n.title == key)
        .ok_or_else(|| anyhow!("no note {key:?} (hearth notes list)"))
}

/// A note as Markdown: front matter (id, tags, pinned), the title, the body, the checklist.
fn markdown(n: &shared_schema::model::Note) -> String {
    let tags: Vec<String> = n.tags.iter().map(|t| format!("{t:?}")).collect();
    let mut out = format!(
        "---\nid: {}\ntags: [{}]\npinned: {}\n---\n# {}\n",
        n.id,
        tags.join(", "),
        n.pinned,
        n.title
    );
    if !n.body.is_empty() {
        out.push('\n');
        out.push_str(&n.body);
        out.push('\n');
    }
    if !n.tasks.is_empty() {
        out.push('\n');
        for t in &n.tasks {
            out.push_str(&format!(
                "- [{}] {}\n",
                if t.done { "x" } else { " " },
                t.text
            ));
        }
    }
    out
}

/// A file name for a note: its title's letters, digits and dashes, then its id's start.
fn file_name(n: &shared_schema::model::Note) -> String {
    let stem: String = n
        .title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let stem: String = stem.chars().take(60).collect();
    let id: String = n.id.chars().take(8).collect();
    if stem.is_empty() {
        format!("{id}.md")
    } else {
        format!("{stem}-{id}.md")
    }
}

fn data_file(cli: &Cli) -> anyhow::Result<PathBuf> {
    let path = match &cli.data {
        Some(p) => p.clone(),
        None => PathBuf::from(std::env::var("HOME").context("set HOME or pass --data FILE")?)
            .join(".local/share/hearth/hearth.db"),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(path)
}

/// The notebook the command is about: `--notebook`, else the only one.
async fn notebook(store: &SqliteStore, chosen: Option<&str>) -> anyhow::Result<WorkspaceRecord> {
    let all = store.list_workspaces().await?;
    match chosen {
        Some(id) => all
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| anyhow!("no notebook {id} here (hearth list)")),
        None => match all.len() {
            1 => Ok(all
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("no notebook"))?),
            0 => bail!("no notebook here yet: hearth join '<share link>'"),
            _ => bail!("several notebooks here: pass --notebook ID (hearth list)"),
        },
    }
}

/// One sync round, then the engine reads what arrived (migrations, quarantine).
async fn sync(store: &SqliteStore, ws: &str) -> Result<client_wasm::sync::Round, SyncError> {
    let round = SyncCore::new(store.clone(), ReqwestHttp::new())
        .sync_once(ws, &|_, _| {})
        .await?;
    Ok(round)
}

/// A sync error as one line with its code.
fn sync_failure(e: SyncError) -> anyhow::Error {
    match e.stop_reason() {
        Some(reason) => anyhow!("{e} ({})", reason.as_str()),
        None => anyhow!("{e}"),
    }
}

/// One line per watch event (flushed: a script reads it at once).
fn print_watched(w: &client_native::watch::Watched, json: bool) {
    use client_native::watch::Watched;
    use std::io::Write as _;
    let line = match (w, json) {
        (Watched::Synced(r), true) => serde_json::json!({"event": "synced", "pushed": r.pushed, "pulled": r.pulled, "seq": r.seq}).to_string(),
        (Watched::Synced(r), false) => format!("up to date at seq {}: sent {}, received {}", r.seq, r.pushed, r.pulled),
        (Watched::Received { seq }, true) => serde_json::json!({"event": "received", "seq": seq}).to_string(),
        (Watched::Received { seq }, false) => format!("received seq {seq}"),
        (Watched::Offline { reason, retry_in }, true) => serde_json::json!({"event": "offline", "reason": reason, "retry_in_ms": retry_in.as_millis() as u64}).to_string(),
        (Watched::Offline { reason, retry_in }, false) => format!("offline ({reason}); retrying in {:.1} s", retry_in.as_secs_f64()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let store = SqliteStore::open(&data_file(&cli)?)?;
    match &cli.command {
        Command::Join { link } => {
            let link = shared_schema::link::parse(link)
                .map_err(|_| anyhow!("not a Hearth share link (http(s)://host/#/join/…?t=…)"))?;
            let http = ReqwestHttp::new();
            client_wasm::sync::join(
                &store,
                &http,
                &link.server_url,
                &link.workspace,
                &link.token,
                link.key.as_deref(),
            )
            .await
            .map_err(sync_failure)?;
            let round = sync(&store, &link.workspace).await.map_err(sync_failure)?;
            let engine = Engine::open(store.clone(), &link.workspace).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"notebook": link.workspace, "name": engine.name(), "notes": engine.notes().len(), "seq": round.seq})
                );
            } else {
                println!(
                    "joined “{}” ({}): {} notes",
                    engine.name(),
                    link.workspace,
                    engine.notes().len()
                );
            }
        }
        Command::Sync { watch: true } => {
            let record = notebook(&store, cli.notebook.as_deref()).await?;
            let json = cli.json;
            client_native::watch::watch(&store, &record.id, &mut |w| print_watched(&w, json))
                .await
                .map_err(sync_failure)?;
        }
        Command::Sync { watch: false } => {
            let record = notebook(&store, cli.notebook.as_deref()).await?;
            let round = sync(&store, &record.id).await.map_err(sync_failure)?;
            Engine::open(store.clone(), &record.id).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"pushed": round.pushed, "pulled": round.pulled, "seq": round.seq})
                );
            } else {
                println!(
                    "up to date at seq {}: sent {}, received {}",
                    round.seq, round.pushed, round.pulled
                );
            }
        }
        Command::Export { markdown: dir } => {
            let record = notebook(&store, cli.notebook.as_deref()).await?;
            let engine = Engine::open(store.clone(), &record.id).await?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = 0;
            for n in engine.notes().into_iter().filter(|n| !n.trashed) {
                let path = dir.join(file_name(&n));
                // Written whole, then renamed: a reader never sees half a file.
                let tmp = path.with_extension("md.tmp");
                std::fs::write(&tmp, markdown(&n))
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                written += 1;
            }
            if cli.json {
                println!("{}", serde_json::json!({ "written": written }));
            } else {
                println!("{written} notes written to {}", dir.display());
            }
        }
        Command::Backup { file, passphrase } => {
            let record = notebook(&store, cli.notebook.as_deref()).await?;
            if passphrase.as_ref().is_some_and(|p| p.chars().count() < 8) {
                bail!("a backup passphrase needs at least 8 characters");
            }
            let engine = Engine::open(store.clone(), &record.id).await?;
            let bytes = engine.export_backup_as(passphrase.as_deref())?;
            // Written whole, then renamed: an interrupted backup never leaves half a file.
            let tmp = file.with_extension("hearth.tmp");
            std::fs::write(&tmp, &bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, file)
                .with_context(|| format!("cannot write {}", file.display()))?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"file": file, "bytes": bytes.len(), "encrypted": passphrase.is_some()})
                );
            } else {
                println!("{} bytes written to {}", bytes.len(), file.display());
            }
        }
        Command::Restore {
            file,
            passphrase,
            name,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let engine = Engine::import_backup_with(
                store.clone(),
                &bytes,
                name.as_deref(),
                passphrase.as_deref(),
            )
            .await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"notebook": engine.id(), "name": engine.name(), "notes": engine.notes().len()})
                );
            } else {
                println!(
                    "restored “{}” as notebook {} ({} notes)",
                    engine.name(),
                    engine.id(),
                    engine.notes().len()
                );
            }
        }
        Command::List => {
            let all = store.list_workspaces().await?;
            if cli.json {
                let list: Vec<_> = all
                    .iter()
                    .map(|w| serde_json::json!({"id": w.id, "name": w.name, "role": w.role.as_str(), "server": w.server_url}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for w in all {
                    println!("{}  {}  ({})", w.id, w.name, w.role.as_str());
                }
            }
        }
        Command::Notes { command } => {
            let record = notebook(&store, cli.notebook.as_deref()).await?;
            let engine = Engine::open(store.clone(), &record.id).await?;
            match command {
                NotesCommand::List => {
                    let notes: Vec<_> = engine.notes().into_iter().filter(|n| !n.trashed).collect();
                    if cli.json {
                        println!("{}", serde_json::to_string(&notes)?);
                    } else {
                        for n in notes {
                            println!("{}  {}", n.id, n.title);
                        }
                    }
                }
                NotesCommand::Show { note } => {
                    let n = find_note(&engine, note)?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&n)?);
                    } else {
                        println!("# {}\n\n{}", n.title, n.body);
                        for t in &n.tasks {
                            println!("- [{}] {}", if t.done { "x" } else { " " }, t.text);
                        }
                    }
                }
                NotesCommand::Edit {
                    note,
                    title,
                    body,
                    append,
                    task,
                    tag,
                } => {
                    let n = find_note(&engine, note)?;
                    if let Some(t) = title {
                        engine.set_text(&n.id, Field::Title, &n.title, t).await?;
                    }
                    if let Some(b) = body {
                        engine.set_text(&n.id, Field::Body, &n.body, b).await?;
                    }
                    if let Some(a) = append {
                        let end = find_note(&engine, &n.id)?.body.chars().count();
                        engine.splice_text(&n.id, Field::Body, end, end, a).await?;
                    }
                    if let Some(t) = task {
                        engine.add_task(&n.id, t).await?;
                    }
                    if let Some(t) = tag {
                        engine.set_tag(&n.id, t, true).await?;
                    }
                    let n = find_note(&engine, &n.id)?;
                    if cli.json {
                        println!("{}", serde_json::to_string(&n)?);
                    } else {
                        println!("{}", n.id);
                    }
                }
                NotesCommand::Add { title, body } => {
                    let id = engine.create_note(title).await?;
                    if !body.is_empty() {
                        engine.splice_text(&id, Field::Body, 0, 0, body).await?;
                    }
                    if cli.json {
                        println!("{}", serde_json::json!({ "id": id }));
                    } else {
                        println!("{id}");
                    }
                }
            }
        }
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hearth: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("hearth: {e:#}");
        std::process::exit(1);
    }
}
