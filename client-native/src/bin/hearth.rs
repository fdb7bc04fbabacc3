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
//! hearth import --markdown DIR        the files' edits back, merged as CRDT edits; deleted files trash
//! hearth backup FILE [--passphrase P] / hearth restore FILE [--passphrase P]
//! hearth list                         the notebooks in the data file
//! ```
//! `--json` prints JSON for scripts; errors are one line with the same codes as the server and
//! the browser (`token_revoked`, `chain_mismatch`, …) and exit status 1.

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use client_native::{Client, ClientError, ReqwestHttp, SqliteStore};
use client_wasm::storage::Store;
use client_wasm::sync::SyncError;
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
    /// Also trust the certificates in this PEM file for `https://` servers (a self-hosted
    /// server's own certificate or a company CA; the Web PKI's roots are always trusted).
    #[arg(long, env = "HEARTH_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
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
    /// The notebook's status: its seq, edits not yet on the server, role, encryption.
    Status,
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
    /// Read a folder of Markdown files back (as `export` writes them, or written by hand): each
    /// file's changes since it was exported become CRDT edits, so a concurrent edit made
    /// elsewhere is merged, not overwritten; a file without an id is a new note; a note whose
    /// file was deleted goes to the trash (kept, file written again, if edited elsewhere since).
    Import {
        /// The folder.
        #[arg(long)]
        markdown: PathBuf,
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

/// A progress bar on stderr while a pull stores pages — seq reached of the server's head (a
/// spinner if the server did not say its head) — drawn only on a terminal; cleared when dropped.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} receiving [{bar:30}] seq {pos}/{len} ({msg}) {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self(bar)
    }

    /// The callback: `(seq, records, head)` after each page.
    fn pulled(&self) -> impl Fn(u64, usize, Option<u64>) + 'static {
        let bar = self.0.clone();
        move |seq, records, head| {
            bar.set_length(head.unwrap_or(seq).max(seq));
            bar.set_position(seq);
            bar.set_message(format!("{records} records"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A sync error as one line with its code.
fn sync_failure(e: SyncError) -> anyhow::Error {
    client_failure(e.into())
}

/// A client error as one line with its code (`token_revoked`, `no_notebook`, …).
fn client_failure(e: ClientError) -> anyhow::Error {
    anyhow!("{e} ({})", e.code())
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
    let http = match &cli.ca_cert {
        Some(file) => {
            let pem =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            ReqwestHttp::with_roots(&pem).map_err(|e| anyhow!("{}: {e}", file.display()))?
        }
        None => ReqwestHttp::new(),
    };
    let client = Client::with_http(&data_file(&cli)?, http).map_err(client_failure)?;
    let store = client.store.clone();
    let notebook = || async {
        client
            .notebook(cli.notebook.as_deref())
            .await
            .map_err(client_failure)
    };
    match &cli.command {
        Command::Join { link } => {
            let progress = Progress::new();
            let (ws, round) = client
                .join(link, progress.pulled())
                .await
                .map_err(client_failure)?;
            drop(progress);
            let engine = client.engine(&ws).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"notebook": ws, "name": engine.name(), "notes": engine.notes().len(), "seq": round.seq})
                );
            } else {
                println!(
                    "joined “{}” ({ws}): {} notes",
                    engine.name(),
                    engine.notes().len()
                );
            }
        }
        Command::Status => {
            let record = notebook().await?;
            let status = client.status(&record.id).await.map_err(client_failure)?;
            if cli.json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!(
                    "“{}” ({}, {}): seq {}, {} edits not yet on the server{}",
                    status.name,
                    status.notebook,
                    status.role,
                    status.seq,
                    status.pending,
                    if status.encrypted {
                        ", end-to-end encrypted"
                    } else {
                        ""
                    }
                );
            }
        }
        Command::Sync { watch: true } => {
            let record = notebook().await?;
            let json = cli.json;
            client_native::watch::watch(&store, client.http(), &record.id, &mut |w| {
                print_watched(&w, json)
            })
            .await
            .map_err(sync_failure)?;
        }
        Command::Sync { watch: false } => {
            let record = notebook().await?;
            let progress = Progress::new();
            let round = client
                .sync_with(&record.id, progress.pulled())
                .await
                .map_err(client_failure)?;
            drop(progress);
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
            let record = notebook().await?;
            let engine = Engine::open(store.clone(), &record.id).await?;
            let written = client_native::markdown::export(&engine, dir).await?;
            if cli.json {
                println!("{}", serde_json::json!({ "written": written }));
            } else {
                println!("{written} notes written to {}", dir.display());
            }
        }
        Command::Import { markdown: dir } => {
            let record = notebook().await?;
            let engine = Engine::open(store.clone(), &record.id).await?;
            let done = client_native::markdown::import(&engine, dir).await?;
            if cli.json {
                println!("{}", serde_json::to_string(&done)?);
            } else {
                println!(
                    "{} new, {} updated, {} unchanged, {} moved to the trash (hearth sync sends them)",
                    done.created, done.updated, done.unchanged, done.trashed
                );
                if done.kept > 0 {
                    eprintln!(
                        "hearth: {} notes whose file was deleted were edited elsewhere since: kept, and their files written again",
                        done.kept
                    );
                }
                if done.unknown_version > 0 {
                    eprintln!(
                        "hearth: {} files were not exported from this data file's history: their text replaced the note's",
                        done.unknown_version
                    );
                }
            }
        }
        Command::Backup { file, passphrase } => {
            let record = notebook().await?;
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
            let record = notebook().await?;
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
