//! Console output of `cargo xtask dev`: one progress line per step, and every child's
//! log lines with a `[name]` prefix.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

const COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "91"];

/// Whether our output is a terminal (and NO_COLOR is unset).
pub fn color_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED
        .get_or_init(|| std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
}

fn color_for(name: &str) -> &'static str {
    let hash = name
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    COLORS[hash % COLORS.len()]
}

/// Prints `line` prefixed with `[name]`, in one write so lines of children do not interleave.
pub fn prefixed(name: &str, line: &str) {
    let text = if color_enabled() {
        format!("\x1b[{}m[{name}]\x1b[0m {line}\n", color_for(name))
    } else {
        format!("[{name}] {line}\n")
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A progress line of the dev command itself.
pub fn step(message: impl AsRef<str>) {
    let message = message.as_ref();
    let text = if color_enabled() {
        format!("\x1b[1;34m==>\x1b[0m \x1b[1m{message}\x1b[0m\n")
    } else {
        format!("==> {message}\n")
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
