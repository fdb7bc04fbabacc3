//! # hearth-server
//!
//! Stores opaque workspace blobs (it never decodes Loro) behind master and access JWTs.
//!
//! - [`config`] — flags and environment.
//! - [`app`] — building and running the actix-web server.
#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod store;

pub use config::Config;
