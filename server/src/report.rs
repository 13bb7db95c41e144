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

/// The mean over categories of each scenario's figures, as one report named `mean of N`.
/// Scenarios missing from some category are averaged over the categories that have them.
pub fn mean_report(reports: &[crate::eval::Report]) -> Option<crate::eval::Report> {
    let first = reports.first()?;
    let mut names: Vec<String> = Vec::new();
    for r in reports {
        for l in &r.scenarios {
            if !names.contains(&l.name) {
                names.push(l.name.clone());
            }
        }
    }
    let scenarios = names
        .iter()
        .map(|name| {
            let lines: Vec<&crate::eval::ScenarioReport> = reports
                .iter()
                .flat_map(|r| r.scenarios.iter().filter(|l| &l.name == name))
                .collect();
            let n = lines.len() as f64;
            let mean = |f: &dyn Fn(&crate::eval::ScenarioReport) -> f64| {
                lines.iter().map(|l| f(l)).sum::<f64>() / n
            };
            let mut out = lines[0].clone();
            out.accuracy.image_auroc = mean(&|l| l.accuracy.image_auroc);
            out.accuracy.pixel_auroc = mean(&|l| l.accuracy.pixel_auroc);
            out.accuracy.pixel_f1 = mean(&|l| l.accuracy.pixel_f1);
            out.accuracy.aupro = mean(&|l| l.accuracy.aupro);
            out.payload_bytes = mean(&|l| l.payload_bytes);
            out.train_s = mean(&|l| l.train_s);
            out.tx_ms = mean(&|l| l.tx_ms);
            out.total_ms = mean(&|l| l.total_ms);
            let t = &mut out.times_ms;
            t.edge_extract = mean(&|l| l.times_ms.edge_extract);
            t.edge_encode = mean(&|l| l.times_ms.edge_encode);
            t.server_decode = mean(&|l| l.times_ms.server_decode);
            t.server_extract = mean(&|l| l.times_ms.server_extract);
            t.server_score = mean(&|l| l.times_ms.server_score);
            out
        })
        .collect();
    Some(crate::eval::Report {
        category: format!("mean of {} categories", reports.len()),
        machine: first.machine.clone(),
        link: first.link,
        scenarios,
    })
}

/// The paper's Tables 1-3 for one report (a category, or the mean of several).
pub fn paper_tables(report: &crate::eval::Report) -> String {
    let base = report.scenarios.iter().find(|l| l.name == "original");
    let delta = |x: f64, f: fn(&crate::eval::ScenarioReport) -> f64| {
        base.map_or_else(|| "n/a".to_string(), |b| delta_pct(x, f(b)))
    };
    let link = &report.link;

    let t1: Vec<Vec<String>> = report
        .scenarios
        .iter()
        .map(|l| {
            let a = &l.accuracy;
            vec![
                format!("`{}`", l.name),
                f3(a.image_auroc),
                delta(a.image_auroc, |b| b.accuracy.image_auroc),
                f3(a.pixel_f1),
                delta(a.pixel_f1, |b| b.accuracy.pixel_f1),
                f3(a.pixel_auroc),
                f3(a.aupro),
            ]
        })
        .collect();
    let t2: Vec<Vec<String>> = report
        .scenarios
        .iter()
        .map(|l| {
            let t = &l.times_ms;
            let server = t.server_decode + t.server_extract + t.server_score;
            vec![
                format!("`{}`", l.name),
                format!("{:.2}", t.edge_extract * link.edge_scale),
                format!("{:.2}", t.edge_encode * link.edge_scale),
                format!("{:.2}", t.server_decode),
                format!("{:.2}", t.server_extract),
                f1(t.server_score),
                f1(link.edge_ms(t) + server),
            ]
        })
        .collect();
    let t3: Vec<Vec<String>> = report
        .scenarios
        .iter()
        .map(|l| {
            vec![
                format!("`{}`", l.name),
                format!("{:.0}", l.payload_bytes),
                format!("{:.1}", l.payload_bytes / 1000.0),
                f1(l.tx_ms),
                f1(l.total_ms),
                delta(l.total_ms, |b| b.total_ms),
            ]
        })
        .collect();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "**Table 1: accuracy, {}.** Deltas are relative to `original`.\n",
        report.category
    );
    out += &table(&["scenario", "img AUROC", "Δ", "px F1", "Δ", "px AUROC", "AUPRO"], &t1);
    let _ = writeln!(
        out,
        "\n**Table 2: time per image, ms, {}.** Edge stages are measured here and multiplied by \
         {} (the edge-scale factor); server stages as measured.\n",
        report.category, link.edge_scale
    );
    out += &table(
        &[
            "scenario",
            "edge extract",
            "edge encode",
            "server decode",
            "server extract",
            "score",
            "edge + server",
        ],
        &t2,
    );
    let _ = writeln!(
        out,
        "\n**Table 3: payload and end-to-end time, {}.** Payload is the real bytes on the wire, \
         header included (the paper counted each PQ code as a 4-byte float); Tx at {} kB/s; \
         total = scaled edge + Tx + server.\n",
        report.category, link.link_kbps
    );
    out += &table(&["scenario", "payload B", "payload kB", "Tx ms", "total ms", "Δ total"], &t3);
    out
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
