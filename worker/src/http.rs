//! `fetch` from the worker: the transport and requests of [`client_wasm::sync::fetch`] (shared with
//! the plain-JavaScript API), and the worker's global scope.

pub use client_wasm::sync::fetch::*;
use wasm_bindgen::JsCast;
use web_sys::WorkerGlobalScope;

/// The worker's global scope.
pub fn global() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}
