//! The paper's Figures 3 and 4 as SVG, drawn with plotters.
//!
//! - Figure 3: pixel F1 per category and scenario, as grouped bars.
//! - Figure 4: pixel F1 against payload bytes (log scale), one point per scenario and category.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::eval::Report;

fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a figure: {e:?}")
}

/// Every scenario name in first-seen order.
fn scenario_names(reports: &[Report]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in reports.iter().flat_map(|r| &r.scenarios) {
        if !names.contains(&l.name) {
            names.push(l.name.clone());
        }
    }
    names
}

/// Figure 3: grouped bars of pixel F1, one group per category, one bar per scenario.
///
/// # Errors
/// When the file cannot be written.
pub fn pixel_f1_bars(reports: &[Report], path: &Path) -> Result<()> {
    let names = scenario_names(reports);
    let groups = reports.len().max(1);
    let width = (240 + 70 * groups * names.len().max(1)).clamp(640, 1600) as u32;
    let root = SVGBackend::new(path, (width, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Pixel F1 per category and scenario", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..groups as f64, 0f64..1f64)
        .map_err(draw_err)?;
    let categories: Vec<String> = reports.iter().map(|r| r.category.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            // Labels only at group centres.
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                categories.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("pixel F1")
        .draw()
        .map_err(draw_err)?;

    let bar = 0.8 / names.len().max(1) as f64;
    for (s, name) in names.iter().enumerate() {
        let color = Palette99::pick(s).mix(0.9);
        let bars = reports.iter().enumerate().filter_map(|(g, r)| {
            let l = r.scenarios.iter().find(|l| &l.name == name)?;
            let x0 = g as f64 + 0.1 + s as f64 * bar;
            Some(Rectangle::new([(x0, 0.0), (x0 + bar * 0.9, l.accuracy.pixel_f1)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(draw_err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// Figure 4: pixel F1 against mean payload bytes, log x.
///
/// # Errors
/// When the file cannot be written.
pub fn f1_vs_payload(reports: &[Report], path: &Path) -> Result<()> {
    let lines: Vec<_> =
        reports.iter().flat_map(|r| r.scenarios.iter().map(move |l| (r, l))).collect();
    let (lo, hi) = lines.iter().fold((f64::MAX, 0f64), |(lo, hi), (_, l)| {
        (lo.min(l.payload_bytes), hi.max(l.payload_bytes))
    });
    let (lo, hi) = if lines.is_empty() { (100.0, 1e6) } else { (lo / 2.0, hi * 3.0) };
    let f1_lo = lines.iter().map(|(_, l)| l.accuracy.pixel_f1).fold(1f64, f64::min);
    let y0 = ((f1_lo - 0.05).max(0.0) * 10.0).floor() / 10.0;

    let root = SVGBackend::new(path, (820, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Pixel F1 against payload", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d((lo..hi).log_scale(), y0..1f64)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("payload bytes per image (log scale)")
        .y_desc("pixel F1")
        .x_label_formatter(&|x| {
            if *x >= 1000.0 { format!("{:.0}k", x / 1000.0) } else { format!("{x:.0}") }
        })
        .draw()
        .map_err(draw_err)?;
    let names = scenario_names(reports);
    for (i, (report, l)) in lines.iter().enumerate() {
        let s = names.iter().position(|n| n == &l.name).unwrap_or(i);
        let color = Palette99::pick(s);
        let label = if reports.len() > 1 {
            format!("{} ({})", l.name, report.category)
        } else {
            l.name.clone()
        };
        let point = EmptyElement::at((l.payload_bytes, l.accuracy.pixel_f1))
            + Circle::new((0, 0), 5, color.filled())
            + Text::new(label, (8, -8), ("sans-serif", 13));
        chart.draw_series(std::iter::once(point)).map_err(draw_err)?;
    }
    root.present().map_err(draw_err)
}
