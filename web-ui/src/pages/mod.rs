//! One module per page of the app.

pub mod backup;
pub mod history;
pub mod notes;
pub mod share;
pub mod workspaces;
