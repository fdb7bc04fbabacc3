//! Entry point of the sync worker's wasm bundle (`worker.js`, built by Trunk).
use gloo_worker::Registrable;
use worker::SyncWorker;

fn main() {
    console_error_panic_hook::set_once();
    SyncWorker::registrar().register();
}
