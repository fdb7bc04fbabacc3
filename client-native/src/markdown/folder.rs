//! What a Markdown folder held when Hearth last wrote it: `.hearth-folder.json`.
//!
//! A note with no file in the folder is either one whose file the user deleted or one that was
//! never written there (made elsewhere after the export). The manifest tells them apart: it names
//! the notebook and, for every note with a file, a fingerprint (SHA-256) of the note as that file
//! showed it. At import, a note the manifest lists whose file is gone is moved to the trash when it
//! still matches its fingerprint (nobody changed it since); when it was edited elsewhere since,
//! the edit wins over the deletion and its file is written again. Notes the manifest does not list
//! are never touched.
//!
//! A manifest that is not valid (hand-edited, truncated) is an error that says to delete it; one
//! written for another notebook is ignored. Either way no note is trashed on its word.

use super::{to_markdown, write_whole, MarkdownError};
use sha2::{Digest, Sha256};
use shared_schema::model::Note;
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest's file name (a dot file: not an `.md`, so never read as a note).
pub const FILE: &str = ".hearth-folder.json";

/// The notes a folder held, as Hearth last wrote or read them.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The notebook the folder belongs to.
    pub notebook: String,
    /// Note id → [`fingerprint`] of the note as its file showed it.
    pub notes: BTreeMap<String, String>,
}

/// SHA-256 (hex) of what a file shows of `n`: id, title, body, tasks, tags, pin — not the version
/// it was written at, nor when the note was edited.
pub fn fingerprint(n: &Note) -> String {
    hex::encode(Sha256::digest(to_markdown(n, "").as_bytes()))
}

/// The folder's manifest for `notebook`: `None` when there is none, or it is another notebook's.
pub fn read(dir: &Path, notebook: &str) -> Result<Option<Manifest>, MarkdownError> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MarkdownError::Io {
                action: "read",
                path,
                source,
            })
        }
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| MarkdownError::BadFile {
        path: path.clone(),
        reason: format!(
            "not a folder manifest Hearth wrote ({e}); delete it to import without \
                 detecting deleted files"
        ),
    })?;
    Ok((manifest.notebook == notebook).then_some(manifest))
}

/// Writes the manifest whole (then renamed into place).
pub fn write(dir: &Path, manifest: &Manifest) -> Result<(), MarkdownError> {
    let path = dir.join(FILE);
    let text = serde_json::to_string_pretty(manifest).map_err(|e| MarkdownError::BadFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_whole(&path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(body: &str) -> Note {
        Note {
            id: "n1".into(),
            title: "t".into(),
            body: body.into(),
            tasks: Vec::new(),
            tags: Vec::new(),
            pinned: false,
            trashed: false,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn a_fingerprint_changes_with_the_content_and_not_with_the_edit_time() {
        let a = note("x");
        let later = Note {
            updated_at: 99,
            ..a.clone()
        };
        assert_eq!(fingerprint(&a), fingerprint(&later));
        assert_ne!(fingerprint(&a), fingerprint(&note("y")));
    }

    #[test]
    fn a_broken_manifest_is_an_error_and_another_notebooks_is_ignored(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("hearth-folder-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        assert!(read(&dir, "w1")?.is_none(), "no manifest yet");
        std::fs::write(dir.join(FILE), "{\"notebook\": \"w1\", \"notes\": ")?;
        let err = read(&dir, "w1")
            .err()
            .ok_or("a truncated manifest was accepted")?;
        assert!(err.to_string().contains("delete it"), "{err}");
        let mut m = Manifest {
            notebook: "w2".into(),
            ..Manifest::default()
        };
        m.notes.insert("n1".into(), fingerprint(&note("x")));
        write(&dir, &m)?;
        assert!(read(&dir, "w1")?.is_none(), "another notebook's");
        let back = read(&dir, "w2")?.ok_or("its own manifest")?;
        assert_eq!(back.notes, m.notes);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
