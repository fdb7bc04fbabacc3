//! [`EngineError`]: the one error type at the engine's boundary.

use crate::storage::StorageError;
use shared_schema::model::ModelError;
use thiserror::Error;

/// An engine operation failed. On any error the document and the stored state are unchanged,
/// except where noted.
#[derive(Debug, Error)]
pub enum EngineError {
    /// Local storage failed (full quota, blocked upgrade, …). The edit was rolled back.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The edit does not fit the document (unknown note, bad range, …).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Bytes from the server, a backup or storage are not valid Loro data.
    #[error("could not decode workspace data: {0}; nothing was imported")]
    Decode(String),
    /// The engine could not encode an update or snapshot.
    #[error("could not encode workspace data: {0}")]
    Encode(String),
    /// The workspace is not stored on this device.
    #[error("workspace {0} is not on this device")]
    UnknownWorkspace(String),
    /// This device only has read access to the workspace.
    #[error("this workspace is shared with you read-only; ask the owner for a write link to edit")]
    ReadOnly,
    /// Pulled updates do not match the server's integrity chain.
    #[error(transparent)]
    Chain(#[from] shared_schema::chain::ChainError),
    /// A pulled page does not follow the last pulled seq.
    #[error(
        "pulled seq {got} does not follow {expected}; sync will restart from the last good seq"
    )]
    OutOfOrder {
        /// The seq the engine expected next.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// A backup file is damaged or not a backup.
    #[error(transparent)]
    Backup(#[from] shared_schema::backup::BackupError),
    /// The OS gave no random bytes for a key or nonce.
    #[error(transparent)]
    Random(#[from] crate::keys::NoRandom),
    /// A backup of an encrypted notebook as its server holds it: records without their keys.
    #[error("this backup holds the notebook's encrypted records but not its keys: restore it in a browser that has this notebook, or or restore a copy made with \"Download this device's copy\"")]
    SealedBackup,
    /// This backup carries its keys behind a passphrase, and none was given.
    #[error("this backup is encrypted: enter the passphrase it was saved with")]
    PassphraseNeeded,
    /// Keys were asked for a notebook that is not encrypted.
    #[error("this notebook is not encrypted: its backup needs no passphrase")]
    PlainNotebook,
    /// A sealed record or protected keys did not open.
    #[error(transparent)]
    Seal(#[from] shared_schema::seal::SealError),
    /// The edit was made while an earlier one was being stored, and that write failed: both
    /// were rolled back (this one built on the earlier one's ops).
    #[error("not saved: the edit before it could not be stored ({0}); nothing after it was kept")]
    EarlierEditNotStored(String),
    /// No version with that id in the history.
    #[error("no version {0} in this workspace's history")]
    UnknownVersion(String),
}

impl From<loro::LoroError> for EngineError {
    fn from(e: loro::LoroError) -> Self {
        EngineError::Decode(e.to_string())
    }
}
