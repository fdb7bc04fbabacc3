//! Benchmark workloads (used by `scripts/bench.sh`, never by tests): a deterministic, realistic
//! typing trace — runs of typed characters, backspaces, and cursor jumps — typed into one note body.

/// One edit of the trace: replace `start..end` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Start, in characters.
    pub start: usize,
    /// End, in characters.
    pub end: usize,
    /// Inserted text.
    pub text: String,
}

/// A deterministic typing trace of `n` edits (xorshift PRNG, fixed seed): mostly one character
/// typed after the previous one, sometimes a backspace, sometimes a jump elsewhere.
pub fn typing_trace(n: usize) -> Vec<Edit> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const WORDS: &[u8] = b"the quick brown fox jumps over a lazy dog while notes sync offline ";
    let mut len = 0usize;
    let mut cursor = 0usize;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = next() % 100;
        if r < 8 && cursor > 0 {
            out.push(Edit {
                start: cursor - 1,
                end: cursor,
                text: String::new(),
            });
            cursor -= 1;
            len -= 1;
        } else {
            if r < 10 && len > 0 {
                cursor = (next() as usize) % (len + 1);
            }
            let c = WORDS[i % WORDS.len()] as char;
            out.push(Edit {
                start: cursor,
                end: cursor,
                text: c.to_string(),
            });
            cursor += 1;
            len += 1;
        }
    }
    out
}

/// The "big paste" workload: owner A (in memory) and member B (on `b_store`) share a notebook on
/// an in-memory server; B makes an edit of its own that reaches the server first, then A pastes
/// `chars` characters (none: the note stays empty) into a note and syncs; B's worker stores the
/// paste. Returns the workspace id and B's engine, which has not yet read the paste (the caller
/// times `refresh`, then opens).
#[cfg(feature = "engine")]
pub async fn paste_beside_concurrent_edit<S: crate::storage::Store + Clone>(
    b_store: S,
    chars: usize,
) -> Result<(String, crate::Engine<S>), Box<dyn std::error::Error>> {
    use crate::storage::MemoryStore;
    use crate::sync::{memory::MemoryServer, SyncCore};
    use crate::Engine;
    let server = MemoryServer::new();
    let url = "http://memory";
    let a_store = MemoryStore::new();
    let a = Engine::create(a_store.clone(), "Bench").await?;
    let ws = a.id();
    crate::sync::connect(&a_store, &server, url, &ws).await?;
    let a_core = SyncCore::new(a_store.clone(), server.clone());
    let note = a.create_note("Pasted").await?;
    a_core.sync_once(&ws, &|_, _| {}).await?;
    let request = shared_schema::api::MintTokenRequest {
        role: shared_schema::Role::Write,
        expires_in: None,
        label: "bench".into(),
    };
    let link = crate::sync::keys::share(&a_store, &server, &ws, &request).await?;
    let key = link.key.map(|k| k.to_text());
    crate::sync::join(
        &b_store,
        &server,
        url,
        &ws,
        &link.minted.token,
        key.as_deref(),
    )
    .await?;
    let b_core = SyncCore::new(b_store.clone(), server.clone());
    b_core.sync_once(&ws, &|_, _| {}).await?;
    let b = Engine::open(b_store, &ws).await?;
    b.refresh().await?;
    b.create_note("B's own").await?;
    b_core.sync_once(&ws, &|_, _| {}).await?;
    if chars > 0 {
        let text: String = "a pasted line of text\n"
            .chars()
            .cycle()
            .take(chars)
            .collect();
        a.set_text(&note, shared_schema::model::Field::Body, "", &text)
            .await?;
    }
    a_core.sync_once(&ws, &|_, _| {}).await?;
    b_core.sync_once(&ws, &|_, _| {}).await?;
    Ok((ws, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_is_deterministic_and_always_in_range() {
        let a = typing_trace(2000);
        assert_eq!(a, typing_trace(2000));
        let mut len = 0usize;
        for e in &a {
            assert!(e.start <= e.end && e.end <= len, "{e:?} in a text of {len}");
            len = len - (e.end - e.start) + e.text.chars().count();
        }
        assert!(len > 1000);
    }
}
