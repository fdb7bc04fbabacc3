//! Random ids of this client: Loro peer ids (one per engine session) and the random tail of
//! pending keys. Seeded from the OS (via `uuid`) on first use; the fault simulation seeds it so a
//! run replays exactly.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn os_seed() -> u64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    (hi ^ lo.rotate_left(17)) | 1
}

/// Makes every later id of this thread a function of `seed` (simulation and tests only need it;
/// production never calls it).
pub fn seed(seed: u64) {
    STATE.with(|s| s.set(seed | 1));
}

/// A random 64-bit value (xorshift64*, seeded once from the OS).
pub fn random_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = os_seed();
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A fresh Loro peer id: every engine session (each tab, each reopen, each rollback) gets its own,
/// so two sessions never create ops with the same id.
pub fn random_peer_id() -> u64 {
    // Loro reserves u64::MAX; keep ids well inside the range.
    random_u64() >> 1
}
