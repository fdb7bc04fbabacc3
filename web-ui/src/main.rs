//! # web-ui — Hearth's web app (Leptos, client-side rendered, built by Trunk)
//!
//! - [`api`] — all I/O: the engine (IndexedDB), the sync worker, the BroadcastChannel, downloads.
//! - [`app`] — the shell: header with sync status, sharing bar, navigation between pages.
//! - [`pages`] — one module per page: notes, history, backup, notebooks.
//! - [`presence`] — who else has the notebook open (this tab's id, the list, the dots).
//! - [`storage_health`] — persistent storage, usage and quota, and notebooks the browser deleted.

mod api;
mod app;
mod pages;
mod presence;
mod storage_health;

fn main() {
    console_error_panic_hook::set_once();
    // The sync worker runs this same bundle (one copy of the code on a first load, see
    // `api::start_worker`): in a worker scope it registers the worker instead of mounting the app.
    use wasm_bindgen::JsCast;
    if js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .is_ok()
    {
        use gloo_worker::Registrable;
        worker::SyncWorker::registrar().register();
        return;
    }
    leptos::mount::mount_to_body(app::App);
}
