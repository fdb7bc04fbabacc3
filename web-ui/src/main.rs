//! # web-ui — Hearth's web app (Leptos, client-side rendered, built by Trunk)
//!
//! - [`api`] — all I/O: the engine (IndexedDB), the sync worker, the BroadcastChannel, downloads.
//! - [`app`] — the shell: header with sync status, sharing bar, navigation between pages.
//! - [`pages`] — one module per page: notes, history, backup, notebooks.
//! - [`presence`] — who else has the notebook open (this tab's id, the list, the dots).

mod api;
mod app;
mod pages;
mod presence;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
