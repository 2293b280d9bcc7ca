//! A small markdown-table writer and the cell formats the tables share.

use std::fmt::Display;
use std::fmt::Write as _;

/// A markdown table: a header row, then body rows of the same width.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: ToString>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows
            .push(cells.into_iter().map(|c| c.to_string()).collect());
        self
    }

    pub fn rows<S: ToString, R: IntoIterator<Item = S>>(
        &mut self,
        rows: impl IntoIterator<Item = R>,
    ) -> &mut Self {
        for row in rows {
            self.row(row);
        }
        self
    }

    /// `| a | b |` lines, the `| --- |` separator, and a trailing newline.
    pub fn render(&self) -> String {
        let mut out = format!(
            "| {} |\n|{}\n",
            self.header.join(" | "),
            " --- |".repeat(self.header.len())
        );
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// An optional figure: its value, or `–` when it was not measured.
pub fn or_dash<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

/// A markdown-bold cell.
pub fn bold(text: impl Display) -> String {
    format!("**{text}**")
}

/// A code-formatted cell.
pub fn code(text: impl Display) -> String {
    format!("`{text}`")
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / 1_048_576.0)
}

/// Whole US dollars with thousands separators (`$1,234`).
pub fn dollars(amount: f64) -> String {
    let whole = amount.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if whole < 0 { "−" } else { "" };
    format!("{sign}${grouped}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_separator_and_rows() {
        let mut table = Table::new(["a", "b"]);
        table.row(["1", "2"]);
        assert_eq!(table.render(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }

    #[test]
    fn formats_dollars() {
        assert_eq!(dollars(1234.4), "$1,234");
        assert_eq!(dollars(12.6), "$13");
        assert_eq!(dollars(-1000.0), "−$1,000");
    }
}
