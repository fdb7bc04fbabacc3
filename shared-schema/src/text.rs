//! Text positions between the engine and the DOM. The engine (Loro text, the UI's diff) counts
//! Unicode scalar values; a text field's caret counts UTF-16 code units. They differ once the text
//! holds astral characters (emoji): "😀" is one scalar and two units. A caret kept through a remote
//! edit is converted to scalars, moved through the splice, and converted back.

/// The scalar index of UTF-16 position `units` in `text` (a position inside a surrogate pair
/// counts as the character's start; past the end is the end).
pub fn utf16_to_chars(text: &str, units: u32) -> usize {
    let mut seen = 0u32;
    for (i, c) in text.chars().enumerate() {
        let next = seen + c.len_utf16() as u32;
        if next > units {
            return i;
        }
        seen = next;
    }
    text.chars().count()
}

/// The UTF-16 position of scalar index `chars` in `text` (past the end is the end).
pub fn chars_to_utf16(text: &str, chars: usize) -> u32 {
    text.chars().take(chars).map(|c| c.len_utf16() as u32).sum()
}

/// The splice turning `old` into `new`: common prefix and suffix kept (in characters).
pub fn diff(old: &str, new: &str) -> (usize, usize, String) {
    let o: Vec<char> = old.chars().collect();
    let n: Vec<char> = new.chars().collect();
    let prefix = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    let max_suffix = o.len().min(n.len()) - prefix;
    let suffix = o
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    (
        prefix,
        o.len() - suffix,
        n[prefix..n.len() - suffix].iter().collect(),
    )
}

/// Moves a scalar position through the splice `start..end → inserted` scalars: after the
/// replaced range it shifts by the length change, inside it goes to the end of the insertion.
pub fn shift(pos: usize, start: usize, end: usize, inserted: usize) -> usize {
    if pos >= end {
        pos + inserted - (end - start)
    } else if pos > start {
        start + inserted
    } else {
        pos
    }
}

/// The DOM caret (UTF-16) in `old` after `old` became `new` by the splice `start..end →
/// inserted` (scalars): the same place in the text.
pub fn caret_through(
    old: &str,
    new: &str,
    caret: u32,
    start: usize,
    end: usize,
    inserted: usize,
) -> u32 {
    let at = shift(utf16_to_chars(old, caret), start, end, inserted);
    chars_to_utf16(new, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_convert_both_ways_across_emoji() {
        let s = "😀a😀b";
        assert_eq!(utf16_to_chars(s, 0), 0);
        assert_eq!(utf16_to_chars(s, 2), 1);
        assert_eq!(utf16_to_chars(s, 3), 2);
        assert_eq!(utf16_to_chars(s, 1), 0, "inside a surrogate pair");
        assert_eq!(utf16_to_chars(s, 99), 4);
        assert_eq!(chars_to_utf16(s, 2), 3);
        assert_eq!(chars_to_utf16(s, 4), 6);
        for units in [0, 2, 3, 5, 6] {
            assert_eq!(chars_to_utf16(s, utf16_to_chars(s, units)), units);
        }
    }

    #[test]
    fn a_remote_edit_after_the_caret_does_not_move_it_and_one_before_moves_it_by_its_length() {
        let old = "😀😀 hello world";
        let caret = chars_to_utf16(old, 8); // after "hello"
        assert_eq!(caret, 10);
        // "X" inserted before "world" (scalar 9): after the caret.
        let new = "😀😀 hello Xworld";
        assert_eq!(caret_through(old, new, caret, 9, 9, 1), 10);
        // "🎉" inserted at the start: before the caret, which moves by its two units.
        let new = "🎉😀😀 hello world";
        assert_eq!(caret_through(old, new, caret, 0, 0, 1), 12);
        // The emoji before the caret deleted: the caret moves back by two units.
        let new = "😀 hello world";
        assert_eq!(caret_through(old, new, caret, 0, 1, 0), 8);
    }
}
