//! # web-ui — Hearth's web app (Leptos, client-side rendered, built by Trunk)
//!
//! - [`api`] — all I/O: the engine (IndexedDB) and the sync worker. Pages never touch them directly.
//! - [`app`] — the root component and the notes page.

mod api;
mod app;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
