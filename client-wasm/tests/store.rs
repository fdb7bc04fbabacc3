//! The store contract on the in-memory twin (the same checks run on IndexedDB in `browser.rs`).
#![cfg(not(target_arch = "wasm32"))]

mod contract;

use client_wasm::storage::MemoryStore;
use futures::executor::block_on;

#[test]
fn load_since_returns_only_what_is_new_in_memory() -> Result<(), contract::Failed> {
    block_on(contract::load_since_returns_only_what_is_new(
        &MemoryStore::new(),
    ))
}

#[test]
fn a_merge_replaces_only_an_unread_last_update_in_memory() -> Result<(), contract::Failed> {
    block_on(contract::a_merge_replaces_only_an_unread_last_update(
        &MemoryStore::new(),
    ))
}

#[test]
fn reseal_replaces_only_plain_updates_still_pending_in_memory() -> Result<(), contract::Failed> {
    block_on(contract::reseal_replaces_only_plain_updates_still_pending(
        &MemoryStore::new(),
    ))
}
