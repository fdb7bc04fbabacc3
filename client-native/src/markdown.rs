//! A notebook as a folder of Markdown files, both ways.
//!
//! [`export`] writes one file per note (written whole, then renamed): front matter with the
//! note's `id`, the notebook `version` the file was written at, its `tags` and `pinned`; then
//! `# title`, the body, and the checklist as `- [ ]` / `- [x]` lines at the end.
//!
//! [`import`] reads the files back as CRDT edits. A file's edits are what changed *since its
//! version*: they are applied to the notebook as it was at that version and merged
//! ([`Engine::edit_at`]), so a paragraph another device typed meanwhile is kept, not
//! overwritten by the file's older text. A file without an `id` is a new note (its front matter
//! is then written into it). Every file that changed the notebook is rewritten with the merged
//! note and the new version, so importing it again changes nothing. A deleted file moves its
//! note to the trash unless the note was edited elsewhere since ([`folder`]: the folder's
//! manifest of what each file showed).
//!
//! The file format's one ambiguity: checklist lines at the very end of a file are the note's
//! tasks, so a body that itself ends with `- [ ]` lines comes back as tasks.

use client_wasm::error::EngineError;
use client_wasm::storage::Store;
use client_wasm::Engine;
use shared_schema::model::{self, Note, Task};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod folder;

/// A folder could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum MarkdownError {
    /// A file or the folder could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// "read", "write", "list".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not a note this format can read.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The notebook refused the edit (read-only link, full disk, …).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A note read from a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownNote {
    /// The note's id (`None`: a new note).
    pub id: Option<String>,
    /// The notebook version the file was exported at (`None`: unknown, the file wins).
    pub version: Option<String>,
    /// The title (`# …`; else the file name).
    pub title: String,
    /// The body.
    pub body: String,
    /// The checklist.
    pub tasks: Vec<Task>,
    /// Tags.
    pub tags: Vec<String>,
    /// Pinned.
    pub pinned: bool,
}

/// A note as Markdown, exported at notebook `version`.
pub fn to_markdown(n: &Note, version: &str) -> String {
    let tags = serde_json::to_string(&n.tags).unwrap_or_else(|_| "[]".into());
    let mut out = format!(
        "---\nid: {}\nversion: {}\ntags: {tags}\npinned: {}\n---\n# {}\n",
        n.id,
        version,
        n.pinned,
        n.title.replace('\n', " ")
    );
    if !n.body.is_empty() {
        out.push('\n');
        out.push_str(&n.body);
        out.push('\n');
    }
    if !n.tasks.is_empty() {
        out.push('\n');
        for t in &n.tasks {
            let mark = if t.done { "x" } else { " " };
            out.push_str(&format!("- [{mark}] {}\n", t.text.replace('\n', " ")));
        }
    }
    out
}

/// A checklist line's task.
fn task_line(line: &str) -> Option<Task> {
    let rest = line
        .strip_prefix("- [")
        .or_else(|| line.strip_prefix("* ["))?;
    let (mark, text) = rest.split_at_checked(1)?;
    let text = text.strip_prefix("] ")?;
    let done = match mark {
        " " => false,
        "x" | "X" => true,
        _ => return None,
    };
    Some(Task {
        text: text.to_owned(),
        done,
    })
}

/// Reads a note from Markdown; `fallback_title` names it when there is no `# title` line.
pub fn parse(text: &str, fallback_title: &str) -> Result<MarkdownNote, String> {
    let text = text.replace("\r\n", "\n");
    let mut note = MarkdownNote {
        id: None,
        version: None,
        title: fallback_title.to_owned(),
        body: String::new(),
        tasks: Vec::new(),
        tags: Vec::new(),
        pinned: false,
    };
    let mut rest = text.as_str();
    if let Some(after) = rest.strip_prefix("---\n") {
        let (front, after) = after
            .split_once("\n---\n")
            .or_else(|| after.strip_suffix("\n---").map(|f| (f, "")))
            .ok_or("the front matter (---) is not closed")?;
        for line in front.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "id" if !value.is_empty() => note.id = Some(value.to_owned()),
                "version" if !value.is_empty() => note.version = Some(value.to_owned()),
                "pinned" => note.pinned = value == "true",
                "tags" => {
                    note.tags = serde_json::from_str(value)
                        .map_err(|_| format!("tags: {value} is not a list like [\"a\", \"b\"]"))?
                }
                _ => {}
            }
        }
        rest = after;
    }
    if let Some(after) = rest.strip_prefix("# ") {
        let (title, after) = after.split_once('\n').unwrap_or((after, ""));
        note.title = title.to_owned();
        rest = after;
    }
    // The checklist: the task lines at the end.
    let mut lines: Vec<&str> = rest.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut tasks = Vec::new();
    while let Some(task) = lines.last().and_then(|l| task_line(l)) {
        tasks.push(task);
        lines.pop();
    }
    tasks.reverse();
    note.tasks = tasks;
    if !note.tasks.is_empty() && lines.last() == Some(&"") {
        lines.pop();
    }
    let body = lines.join("\n");
    note.body = body.strip_prefix('\n').unwrap_or(&body).to_owned();
    Ok(note)
}

/// A file name for a note: its title's letters, digits and dashes, then its id's start.
pub fn file_name(n: &Note) -> String {
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

/// Writes `text` to `path` whole, then renames it into place: a reader never sees half a file.
fn write_whole(path: &Path, text: &str) -> Result<(), MarkdownError> {
    let io = |source| MarkdownError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes every note not in the trash to `dir` (created if needed); returns how many.
pub async fn export<S: Store>(engine: &Engine<S>, dir: &Path) -> Result<usize, MarkdownError> {
    std::fs::create_dir_all(dir).map_err(|source| MarkdownError::Io {
        action: "create",
        path: dir.to_owned(),
        source,
    })?;
    let version = engine.version();
    let mut manifest = folder::Manifest {
        notebook: engine.id(),
        notes: BTreeMap::new(),
    };
    for n in engine.notes().into_iter().filter(|n| !n.trashed) {
        write_whole(&dir.join(file_name(&n)), &to_markdown(&n, &version))?;
        manifest.notes.insert(n.id.clone(), folder::fingerprint(&n));
    }
    folder::write(dir, &manifest)?;
    Ok(manifest.notes.len())
}

/// What [`import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Files that became new notes.
    pub created: usize,
    /// Files whose edits were merged into their notes.
    pub updated: usize,
    /// Files with nothing new.
    pub unchanged: usize,
    /// Files whose version this notebook does not know (exported elsewhere, or never synced
    /// here): their text was taken as is, against the note as it is now.
    pub unknown_version: usize,
    /// Notes whose file was deleted from the folder, moved to the trash (restorable).
    pub trashed: usize,
    /// Notes whose file was deleted but which were edited elsewhere since it was written: kept,
    /// and their file written again (an edit wins over a deletion).
    pub kept: usize,
}

/// Reads every `.md` file of `dir` into the notebook, then trashes the notes whose file was
/// deleted (see the module header).
pub async fn import<S: Store>(engine: &Engine<S>, dir: &Path) -> Result<Imported, MarkdownError> {
    let list = |source| MarkdownError::Io {
        action: "list",
        path: dir.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(list)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(list)?;
    files.retain(|p| p.extension().is_some_and(|e| e == "md"));
    files.sort();
    // Read first: a broken manifest stops the import before any file changes the notebook.
    let before = folder::read(dir, &engine.id())?;
    let mut report = Imported::default();
    // Every note with a file here → what its file shows now.
    let mut shown = BTreeMap::new();
    for path in files {
        let (id, fingerprint) = import_file(engine, &path, &mut report).await?;
        shown.insert(id, fingerprint);
    }
    // Notes whose file is gone: to the trash, unless edited elsewhere since their file was written.
    let version = engine.version();
    for (id, was) in before.map(|m| m.notes).unwrap_or_default() {
        if shown.contains_key(&id) {
            continue;
        }
        let Some(n) = engine.note(&id).filter(|n| !n.trashed) else {
            continue;
        };
        let now = folder::fingerprint(&n);
        if now == was {
            engine.set_trashed(&id, true).await?;
            report.trashed += 1;
        } else {
            write_whole(&dir.join(file_name(&n)), &to_markdown(&n, &version))?;
            shown.insert(id, now);
            report.kept += 1;
        }
    }
    folder::write(
        dir,
        &folder::Manifest {
            notebook: engine.id(),
            notes: shown,
        },
    )?;
    Ok(report)
}

/// Reads one file into the notebook; returns its note's id and the fingerprint of what the file
/// shows afterwards.
async fn import_file<S: Store>(
    engine: &Engine<S>,
    path: &Path,
    report: &mut Imported,
) -> Result<(String, String), MarkdownError> {
    let text = std::fs::read_to_string(path).map_err(|source| MarkdownError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = parse(&text, &stem).map_err(|reason| MarkdownError::BadFile {
        path: path.to_owned(),
        reason,
    })?;
    let existing = file.id.as_deref().and_then(|id| engine.note(id));
    let id = match existing {
        Some(current) => {
            let wanted = Note {
                id: current.id.clone(),
                title: file.title,
                body: file.body,
                tasks: file.tasks,
                tags: file.tags,
                pinned: file.pinned,
                ..current
            };
            let edit = |d: &loro::LoroDoc, now: i64| {
                model::update_note(d, &wanted, now).map(|changed| (changed, changed))
            };
            let changed = match file.version.as_deref() {
                Some(v) => match engine.edit_at(v, "import Markdown", &edit).await {
                    Err(EngineError::UnknownVersion(_)) => None,
                    other => Some(other?),
                },
                None => None,
            };
            let changed = match changed {
                Some(changed) => changed,
                None => {
                    report.unknown_version += 1;
                    let now = engine.version();
                    engine.edit_at(&now, "import Markdown", &edit).await?
                }
            };
            if !changed {
                // Not rewritten: the file shows what it showed (the note may have moved on).
                report.unchanged += 1;
                return Ok((wanted.id.clone(), folder::fingerprint(&wanted)));
            }
            report.updated += 1;
            wanted.id
        }
        None => {
            let id = engine.create_note(&file.title).await?;
            let wanted = Note {
                id: id.clone(),
                title: file.title,
                body: file.body,
                tasks: file.tasks,
                tags: file.tags,
                pinned: file.pinned,
                trashed: false,
                created_at: 0,
                updated_at: 0,
            };
            let now = engine.version();
            engine
                .edit_at(&now, "import Markdown", |d, now| {
                    model::update_note(d, &wanted, now).map(|c| ((), c))
                })
                .await?;
            report.created += 1;
            id
        }
    };
    // The file now says what the notebook holds (merged) and the version it holds it at.
    let n = engine.note(&id).ok_or_else(|| MarkdownError::BadFile {
        path: path.to_owned(),
        reason: format!("note {id} is not in the notebook after its import"),
    })?;
    write_whole(path, &to_markdown(&n, &engine.version()))?;
    Ok((id, folder::fingerprint(&n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(body: &str, tasks: &[(&str, bool)]) -> Note {
        Note {
            id: "n1".into(),
            title: "Groceries: week 2".into(),
            body: body.into(),
            tasks: tasks
                .iter()
                .map(|(t, d)| Task {
                    text: (*t).into(),
                    done: *d,
                })
                .collect(),
            tags: vec!["home".into(), "with \"quotes\"".into()],
            pinned: true,
            trashed: false,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn a_note_reads_back_as_it_was_written() -> Result<(), String> {
        for (body, tasks) in [
            ("", vec![]),
            ("one line", vec![]),
            ("two\n\nparagraphs\n", vec![("milk", false), ("eggs", true)]),
            ("", vec![("only tasks", false)]),
            ("\nstarts with a blank line", vec![]),
        ] {
            let n = note(body, &tasks);
            let back = parse(&to_markdown(&n, "3@7,9@8"), "x")?;
            assert_eq!(back.id.as_deref(), Some("n1"));
            assert_eq!(back.version.as_deref(), Some("3@7,9@8"));
            assert_eq!(back.title, n.title);
            assert_eq!(back.body, n.body, "body of {body:?}");
            assert_eq!(back.tasks, n.tasks);
            assert_eq!(back.tags, n.tags);
            assert!(back.pinned);
        }
        Ok(())
    }

    #[test]
    fn a_hand_written_file_is_a_new_note_named_by_its_title_or_file() -> Result<(), String> {
        let n = parse(
            "# Plan\r\nsome text\r\n\r\n- [ ] call\r\n- [X] write\r\n",
            "plan",
        )?;
        assert_eq!((n.id, n.title.as_str()), (None, "Plan"));
        assert_eq!(n.body, "some text");
        assert_eq!(n.tasks.len(), 2);
        assert!(n.tasks[1].done);
        let n = parse("just text", "my-file")?;
        assert_eq!(
            (n.title.as_str(), n.body.as_str()),
            ("my-file", "just text")
        );
        Ok(())
    }

    #[test]
    fn broken_front_matter_is_an_error_that_says_what_is_wrong() {
        assert!(parse("---\nid: x\n# no end", "f").is_err_and(|e| e.contains("not closed")));
        assert!(parse("---\ntags: home\n---\n", "f").is_err_and(|e| e.contains("tags")));
    }
}
