//! [`SyncError`]: what a sync step can fail with, and which failures stop sync until the user
//! acts ([`SyncError::stop_reason`]).

use super::*;

/// A sync step failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SyncError {
    /// The server could not be reached; retry with backoff.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The OS gave no random bytes for a key.
    #[error(transparent)]
    Random(#[from] crate::keys::NoRandom),
    /// The workspace has no server or token: nothing to sync.
    #[error("this notebook is only on this device")]
    LocalOnly,
    /// A share link is malformed.
    #[error("this link is not a Hearth share link: {0}")]
    BadLink(String),
    /// Sync must stop until the user acts.
    #[error("{message}")]
    Stop {
        /// Why.
        reason: StopReason,
        /// Details.
        message: String,
    },
}

impl SyncError {
    pub(super) fn stop(reason: StopReason, message: impl Into<String>) -> Self {
        SyncError::Stop {
            reason,
            message: message.into(),
        }
    }

    /// Why this error stops sync until the user acts; `None` when a retry may succeed.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            SyncError::Stop { reason, .. } => Some(*reason),
            SyncError::Transport(TransportError::Api { code, .. }) => {
                StopReason::for_error_code(*code)
            }
            SyncError::Storage(StorageError::QuotaExceeded) => Some(StopReason::StorageFull),
            _ => None,
        }
    }
}
