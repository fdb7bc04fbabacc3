//! Markdown folders: a deleted file trashes its note, but never a note edited elsewhere since, a
//! note the folder never held, or anything on the word of a broken or foreign manifest.

use client_native::markdown::{self, folder};
use client_native::SqliteStore;
use client_wasm::Engine;
use futures::executor::block_on;
use shared_schema::model::Field;
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

/// A fresh folder under the system's temp directory (removed by `Drop`).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `.md` file in `dir` that holds note `id`.
fn file_of(dir: &Path, id: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md")
            && std::fs::read_to_string(&path)?.contains(&format!("\nid: {id}\n"))
        {
            return Ok(path);
        }
    }
    Err(format!("no file for note {id}").into())
}

#[test]
fn a_deleted_file_trashes_its_note_unless_the_note_was_edited_elsewhere_since() -> R {
    block_on(async {
        let dir = TempDir(std::env::temp_dir().join(format!("hearth-md-{}", uuid::Uuid::new_v4())));
        let engine = Engine::create(SqliteStore::in_memory()?, "Folder").await?;
        let gone = engine.create_note("Deleted in the folder").await?;
        let edited = engine.create_note("Deleted here, edited there").await?;
        let kept = engine.create_note("Still in the folder").await?;
        assert_eq!(markdown::export(&engine, &dir.0).await?, 3);
        assert!(
            dir.0.join(folder::FILE).exists(),
            "export writes the manifest"
        );

        // Meanwhile, elsewhere: one note is edited, another made (never written to the folder).
        engine
            .splice_text(&edited, Field::Body, 0, 0, "typed in the app")
            .await?;
        let newer = engine.create_note("Made after the export").await?;
        std::fs::remove_file(file_of(&dir.0, &gone)?)?;
        std::fs::remove_file(file_of(&dir.0, &edited)?)?;

        let report = markdown::import(&engine, &dir.0).await?;
        assert_eq!(
            (report.trashed, report.kept, report.unchanged),
            (1, 1, 1),
            "{report:?}"
        );
        let note = |id: &str| engine.note(id).ok_or(format!("note {id} is gone"));
        assert!(note(&gone)?.trashed, "its file was deleted: to the trash");
        assert!(!note(&edited)?.trashed, "an edit wins over a deletion");
        let back = std::fs::read_to_string(file_of(&dir.0, &edited)?)?;
        assert!(
            back.contains("typed in the app"),
            "its file is written again: {back}"
        );
        assert!(!note(&kept)?.trashed && !note(&newer)?.trashed);
        assert!(file_of(&dir.0, &newer).is_err(), "import does not export");

        let again = markdown::import(&engine, &dir.0).await?;
        assert_eq!(
            (again.trashed, again.kept, again.unchanged),
            (0, 0, 2),
            "importing again changes nothing: {again:?}"
        );

        // A broken manifest stops the import before anything changes; another notebook's
        // manifest is ignored: no note is trashed on its word.
        let kept_file = file_of(&dir.0, &kept)?;
        std::fs::remove_file(&kept_file)?;
        std::fs::write(dir.0.join(folder::FILE), "{\"notebook\": ")?;
        let err = markdown::import(&engine, &dir.0)
            .await
            .err()
            .ok_or("a broken manifest was taken")?;
        assert!(err.to_string().contains("delete it"), "{err}");
        assert!(!note(&kept)?.trashed);
        std::fs::write(
            dir.0.join(folder::FILE),
            format!(
                "{{\"notebook\": \"another\", \"notes\": {{\"{kept}\": \"{}\"}}}}",
                folder::fingerprint(&note(&kept)?)
            ),
        )?;
        let foreign = markdown::import(&engine, &dir.0).await?;
        assert_eq!(foreign.trashed, 0, "{foreign:?}");
        assert!(!note(&kept)?.trashed);
        Ok(())
    })
}
