//! Pending updates — local edits the server has not acknowledged: their keys (ordered by a counter,
//! one reserved ahead for the next staged edit), merging an edit into the open run, and the
//! hand-off of a staged edit to the worker while its write commits.

use super::*;

/// A local update waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpdate {
    /// Idempotency key; keys sort in the order the updates were made on this device.
    pub key: String,
    /// Loro update bytes.
    pub bytes: Vec<u8>,
}

/// How [`Store::append_pending`] hands an update over while its write commits.
#[derive(Clone, Copy)]
pub struct Stage<'a> {
    /// Called with the update as it will be stored and the newest other pending key (`None`:
    /// nothing of this workspace is pending besides it, as far as the caller can tell).
    pub hand: &'a dyn Fn(&PendingUpdate, Option<&str>),
    /// A key the caller reserved with an earlier append ([`Appended::next`]): the update is stored
    /// under it and handed over **before** storage is read (see [`Ahead`]).
    pub ahead: Option<Ahead<'a>>,
}

/// A key reserved ahead and what the caller knows is pending besides its update.
///
/// A tab learns an edit's key without a storage round trip this way: in a browser the reply to
/// the first read of the edit's transaction waits for the frame the edit caused (a few ms on a
/// slow device), and the push waited for the key. The rules that keep every record behind the
/// records it may depend on ([`reserve_is_usable`]): a reservation is taken from the shared
/// counter in the transaction of the caller's previous append, so it is above every key stored
/// then; the caller drops it once it knows of any key at or above it (its own or another
/// tab's), so an edit made on top of a key always gets a greater key; and `after` is the newest
/// pending key the caller knows (an edit depends only on what its tab had: its own edits, other
/// tabs' stored edits it heard of, and received records). Another tab may still store an edit it
/// allocated earlier after this one: edits never depend on one they did not know of, and
/// readers of storage look below what they read before when they hear of such a key
/// ([`Since::pending_after`] is lowered).
#[derive(Debug, Clone, Copy)]
pub struct Ahead<'a> {
    /// The reserved key.
    pub key: &'a str,
    /// The newest pending key the caller knows besides it.
    pub after: Option<&'a str>,
}

/// [`Stage`], when the caller stages.
pub type Staged<'a> = Option<Stage<'a>>;

/// Whether a key reserved ahead may still be used for the next edit: it must be above every
/// pending key the caller knows of (`newest`), so the edit sorts after all it may depend on.
pub fn reserve_is_usable(reserved: &str, newest: Option<&str>) -> bool {
    pending_key_counter(reserved).is_some() && newest.is_none_or(|n| reserved > n)
}

/// Allocates the key an update is stored under and, when the append is staged, the key reserved
/// for the caller's next edit, from `record.next_pending` (which moves past both). A key reserved
/// ahead (`ahead`) was allocated before; the counter is only kept above it.
pub fn allocate_keys(
    record: &mut WorkspaceRecord,
    ahead: Option<&str>,
    staged: bool,
) -> (String, Option<String>) {
    fn take(record: &mut WorkspaceRecord) -> String {
        let key = pending_key(record.next_pending, crate::ids::random_u64());
        record.next_pending = record.next_pending.saturating_add(1);
        key
    }
    let key = match ahead {
        Some(key) => key.to_owned(),
        None => take(record),
    };
    if let Some(n) = pending_key_counter(&key) {
        record.next_pending = record.next_pending.max(n.saturating_add(1));
    }
    let reserved = staged.then(|| take(record));
    (key, reserved)
}

/// The newest of `keys` that stays pending beside a new update (not the one a merge replaces).
pub fn newest_other<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    replaced: Option<&str>,
) -> Option<&'a str> {
    keys.into_iter().filter(|k| Some(*k) != replaced).max()
}

/// What a push reads in one transaction ([`Store::pending_to_push`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToPush {
    /// The workspace's record (where and as whom it syncs), as the transaction found it;
    /// `None` when the workspace is not stored.
    pub record: Option<WorkspaceRecord>,
    /// Its pending updates in causal order.
    pub pending: Vec<PendingUpdate>,
}

/// The idempotency key of the `n`-th pending update of a device: `d`, the number of hex digits
/// of `n` less one (one hex digit), `n` in hex, then 8 characters of a random tail (48 bits) that
/// make it unique across devices. Keys sort by `n` (and after the keys of older versions, which
/// started with `c` or a digit), and are short: 11 bytes for the first 16 edits, 14 for the first million, 26 at most —
/// every push carries one per update.
pub fn pending_key(n: u64, random: u64) -> String {
    const TAIL: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
    let digits = format!("{n:x}");
    let mut key = format!("d{:x}{digits}", digits.len() - 1);
    for i in 0..8 {
        key.push(char::from(TAIL[((random >> (6 * i)) & 63) as usize]));
    }
    key
}

/// An edit stored together with the earlier edits of its run: `bytes` (one Loro update of the
/// whole run) replaces the pending update `replaces`, if that one was never read for a push.
#[derive(Debug, Clone, Copy)]
pub struct Merge<'a> {
    /// Key of the pending update holding the run so far.
    pub replaces: &'a str,
    /// One update covering the run and the new edit.
    pub bytes: &'a [u8],
}

/// What [`Store::append_pending`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The new pending update (under a new key, so other tabs read it as new).
    pub update: PendingUpdate,
    /// True when it replaced the run's update (it holds the merged bytes).
    pub merged: bool,
    /// A key reserved for the caller's next staged edit ([`Ahead`]), when this one was staged.
    pub next: Option<String>,
}

/// The counter `n` a [`pending_key`] was made with (`None` for keys of older formats).
pub fn pending_key_counter(key: &str) -> Option<u64> {
    let rest = key.strip_prefix('d')?;
    let len = usize::from_str_radix(rest.get(..1)?, 16).ok()? + 1;
    u64::from_str_radix(rest.get(1..1 + len)?, 16).ok()
}

/// The pending-queue rule for merging: the run's update is still stored, it is the last one
/// appended (so pending order stays the order edits were made, across tabs), and no push has
/// read it (a key above `pushed_upto`), so nobody can have sent it under its key.
pub fn may_merge(record: &WorkspaceRecord, replaces: &str, stored: bool) -> bool {
    stored
        && pending_key_counter(replaces).is_some_and(|n| n + 1 == record.next_pending)
        && record
            .pushed_upto
            .as_deref()
            .is_none_or(|read| replaces > read)
}
