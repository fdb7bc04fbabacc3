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
