//! Edits made against an older version: a Markdown file exported at version V and changed in
//! an editor says what its writer wanted *relative to V*. [`Engine::edit_at`] applies such an
//! edit on a fork of the document at V and merges the fork's new ops into the document, so what
//! other devices did since V (another paragraph typed in a browser) is kept as a concurrent
//! edit would be, instead of being overwritten by the file's older text.

use super::{configure, now_ms, random_peer_id, Engine, Origin};
use crate::error::EngineError;
use crate::storage::Store;
use loro::{ExportMode, LoroDoc};
use shared_schema::model::ModelError;

impl<S: Store> Engine<S> {
    /// The version the notebook is at now — the version id of each head, comma-separated (the
    /// format [`Self::notes_at`] and [`Self::edit_at`] take).
    pub fn version(&self) -> String {
        self.doc()
            .oplog_frontiers()
            .iter()
            .map(|id| format!("{}@{}", id.counter, id.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `f` on the notebook as it was at `version` and merges what it changed into the
    /// notebook as one durable edit (stored and sent like any other). `f` says whether it changed
    /// anything; if not, nothing is stored. An unknown version is
    /// [`EngineError::UnknownVersion`]; on any error the notebook is unchanged.
    pub async fn edit_at<T>(
        &self,
        version: &str,
        message: &str,
        f: impl FnOnce(&LoroDoc, i64) -> Result<(T, bool), ModelError>,
    ) -> Result<T, EngineError> {
        if self.is_read_only() {
            return Err(EngineError::ReadOnly);
        }
        let value = {
            let _edit = self.edits.lock().await;
            let fork = self.fork_at_version(version)?;
            // The fork's ops are a new peer's: never the id of an op this engine made or will make.
            let peer = random_peer_id();
            configure(&fork, peer)?;
            let start = fork.oplog_vv();
            let (value, changed) = f(&fork, now_ms())?;
            if !changed {
                return Ok(value);
            }
            fork.set_next_commit_message(message);
            fork.commit();
            let bytes = fork
                .export(ExportMode::updates(&start))
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            let doc = self.doc();
            let vv = doc.oplog_vv();
            // Not merged into this session's open run of updates: that run is one peer's ops.
            self.run.replace(None);
            self.peers.borrow_mut().push(peer);
            if let Err(e) = doc.import(&bytes) {
                self.rollback(&vv, peer)?;
                return Err(e.into());
            }
            let stored = self.persist_commit_of(&vv, peer).await;
            self.run.replace(None);
            stored?;
            self.notify(Origin::Local);
            value
        };
        self.save_open_cache_if_due().await;
        Ok(value)
    }
}
