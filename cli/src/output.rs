//! Plain-text tables and ages for people; the JSON forms are built next to
//! each command.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A table printed with its columns aligned.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, or `(none)` under its title when it has no rows.
    pub(crate) fn render(&self, title: &str) -> String {
        let mut out = format!("{title}\n");
        if self.rows.is_empty() {
            out.push_str("  (none)\n");
            return out;
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::from(" ");
            for (cell, width) in cells.zip(&widths) {
                text.push(' ');
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 1));
            }
            text.truncate(text.trim_end().len());
            text.push('\n');
            text
        };
        out.push_str(&line(&mut self.header.iter().copied()));
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long ago `ms` was, as `3m12s` (to the second).
pub(crate) fn age(ms: u64) -> String {
    age_at(now_ms(), ms)
}

/// How long before `now` (milliseconds since the epoch) `ms` was.
pub(crate) fn age_at(now: u64, ms: u64) -> String {
    let elapsed = Duration::from_millis(now.saturating_sub(ms));
    let secs = elapsed.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Up to `max` bytes in hex, with `…` when there were more.
pub(crate) fn hex(bytes: &[u8], max: usize) -> String {
    let mut text: String = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        text.push('…');
    }
    text
}

/// The payload as JSON, when it is a JSON document (an event written by a
/// JSON codec); `None` for anything else (bincode, courier's default).
pub(crate) fn as_json(bytes: &[u8]) -> Option<serde_json::Value> {
    // Only objects and arrays: a bincode payload can happen to parse as a
    // bare JSON number or string.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

/// A payload for a table: its JSON (up to `max * 2` characters) when it is
/// JSON, else its first `max` bytes in hex.
pub(crate) fn shown(bytes: &[u8], max: usize) -> String {
    match as_json(bytes) {
        Some(value) => cut(&value.to_string(), max * 2),
        None => hex(bytes, max),
    }
}

/// `text`, cut to `max` characters with `…` when longer.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_empty_tables_say_so() {
        let mut table = Table::new(&["name", "n"]);
        table.row(vec!["a".into(), "10".into()]);
        table.row(vec!["long-name".into(), "2".into()]);
        assert_eq!(
            table.render("T"),
            "T\n  name       n\n  a          10\n  long-name  2\n"
        );
        assert_eq!(Table::new(&["x"]).render("E"), "E\n  (none)\n");
    }

    #[test]
    fn ages_and_hex_are_short() {
        assert_eq!(age(now_ms() - 5_000), "5s");
        assert_eq!(age(now_ms() - 192_000), "3m12s");
        assert_eq!(age(now_ms() - 2 * 86_400_000 - 3_600_000), "2d01h");
        assert_eq!(hex(&[1, 2, 255], 2), "0102…");
        assert_eq!(hex(&[1], 4), "01");
    }

    #[test]
    fn json_payloads_show_as_json_and_others_as_hex() {
        assert_eq!(shown(br#" {"order": 7}"#, 32), r#"{"order":7}"#);
        assert_eq!(shown(b"[1,2,3,4,5,6]", 2), "[1,2…");
        // A number or a string is no JSON payload: bincode bytes can be one.
        assert_eq!(shown(b"42", 4), "3432");
        assert_eq!(as_json(b"{not json"), None);
        assert_eq!(shown(&[0x7b, 0xff], 4), "7bff");
    }
}
