//! Markdown tables for the README, rendered from measured rows.

use std::fmt::Write;

/// A Markdown table: the header row, then `rows`, every cell already formatted.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        format!("| {} |\n", cells.join(" | "))
    };
    out.push_str(&line(&mut headers.iter().copied()));
    out.push_str(&line(&mut headers.iter().map(|_| "---")));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A caption line saying what data and machine a table was measured on, and the command.
pub fn caption(what: &str, machine: &str, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{what}. Measured on {machine}.");
    let _ = writeln!(out, "Regenerate: `{command}`");
    out
}

/// `x` with three decimals.
pub fn f3(x: f64) -> String {
    format!("{x:.3}")
}

/// `x` with one decimal.
pub fn f1(x: f64) -> String {
    format!("{x:.1}")
}

/// A signed percentage change of `x` against `base`, e.g. `-1.2%`.
pub fn delta_pct(x: f64, base: f64) -> String {
    if base == 0.0 {
        return "n/a".into();
    }
    format!("{:+.1}%", (x / base - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table() {
        let t = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
        assert_eq!(delta_pct(0.9, 1.0), "-10.0%");
        assert_eq!(delta_pct(1.0, 0.0), "n/a");
    }
}
