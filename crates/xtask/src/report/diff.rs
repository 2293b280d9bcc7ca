//! Line diffs of text (renders, the committed figures), from the `similar` crate.

use similar::{ChangeTag, TextDiff};

/// Lines added and removed between two texts.
pub fn line_changes(old: &str, new: &str) -> (usize, usize) {
    TextDiff::from_lines(old, new)
        .iter_all_changes()
        .fold((0, 0), |(added, removed), change| match change.tag() {
            ChangeTag::Insert => (added + 1, removed),
            ChangeTag::Delete => (added, removed + 1),
            ChangeTag::Equal => (added, removed),
        })
}

/// A unified diff of `old` → `new` with one line of context, for `--check` to print.
pub fn diff_text(old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(1)
        .header("committed", "fresh run")
        .to_string()
}
