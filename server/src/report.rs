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

/// The summary of one category's evaluation: accuracy, payload, bank and times per scenario.
pub fn summary(report: &crate::eval::Report, command: &str) -> String {
    let rows: Vec<Vec<String>> = report
        .scenarios
        .iter()
        .map(|l| {
            let t = &l.times_ms;
            vec![
                format!("`{}`", l.name),
                format!("{} ({})", l.backbone, l.taps.join(", ")),
                f3(l.accuracy.image_auroc),
                f3(l.accuracy.pixel_auroc),
                f3(l.accuracy.pixel_f1),
                f3(l.accuracy.aupro),
                format!("{:.0}", l.payload_bytes),
                format!("{} x {}", l.bank_rows, l.bank_bytes / 4 / l.bank_rows.max(1)),
                f1(l.bank_bytes as f64 / 1e6),
                f1(l.train_s),
                f1(t.edge_extract + t.edge_encode),
                f1(t.server_decode + t.server_extract),
                f1(t.server_score),
            ]
        })
        .collect();
    let n = report.scenarios.first().map_or((0, 0), |l| (l.n_train, l.n_test));
    caption(
        &format!("{}, {} train / {} test images", report.category, n.0, n.1),
        &report.machine,
        command,
    ) + "\n"
        + &table(
            &[
                "scenario",
                "features from",
                "img AUROC",
                "px AUROC",
                "px F1",
                "AUPRO",
                "payload B",
                "bank",
                "bank MB",
                "train s",
                "edge ms",
                "server extract ms",
                "score ms",
            ],
            &rows,
        )
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
