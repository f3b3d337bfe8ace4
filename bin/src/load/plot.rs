//! The percentile spectrum as an SVG: latency against percentile on the
//! usual `1/(1−p)` log axis (HdrHistogram's plotter layout), corrected and
//! uncorrected series, drawn with `plotters`.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Points `(1/(1−p), latency µs)` of a histogram, up to the percentile its
/// sample count supports.
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let x_max = (h.len() as f64).clamp(10.0, 1e6);
    let steps = 200;
    (0..=steps)
        .map(|k| {
            let x = x_max.powf(k as f64 / steps as f64);
            let p = 1.0 - 1.0 / x;
            let v = h.value_at_quantile(p.min(1.0)) as f64 / 1000.0;
            (x, v.max(0.001))
        })
        .collect()
}

fn percentile_label(x: &f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p < 99.0 {
        format!("{p:.0}%")
    } else {
        // 99%, 99.9%, 99.99%…: as many decimals as nines after the point.
        let decimals = ((x.log10()).round() as usize).saturating_sub(2);
        format!("{p:.decimals$}%")
    }
}

/// Draws the spectrum of `corrected` and `uncorrected` into `path`.
pub fn write_svg(
    path: &Path,
    title: &str,
    corrected: &Histogram<u64>,
    uncorrected: &Histogram<u64>,
) -> anyhow::Result<()> {
    let c = spectrum(corrected);
    let u = spectrum(uncorrected);
    let x_max = c.iter().chain(&u).map(|p| p.0).fold(10.0f64, f64::max);
    let y_max = c.iter().chain(&u).map(|p| p.1).fold(1.0f64, f64::max) * 2.0;
    let y_min = c
        .iter()
        .chain(&u)
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 10.0)
        .max(0.001)
        / 2.0;

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0f64..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&percentile_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(c, RED.stroke_width(2)))?
        .label("corrected (from intended send time)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(u, BLUE.stroke_width(2)))?
        .label("uncorrected (from actual send time)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    finish(chart, &root)
}

/// Draws the legend and writes the file.
fn finish<'a, X, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> anyhow::Result<()>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws a sweep: corrected p50, p99 and p99.9 against offered rate.
pub fn write_sweep_svg(path: &Path, sweep: &super::sweep::SweepReport) -> anyhow::Result<()> {
    let mut steps: Vec<&super::sweep::Step> = sweep
        .steps
        .iter()
        .filter(|s| s.report.corrected.count > 0)
        .collect();
    steps.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    let series = |f: fn(&super::report::Percentiles) -> f64| -> Vec<(f64, f64)> {
        steps
            .iter()
            .map(|s| (s.offered, f(&s.report.corrected).max(0.001)))
            .collect()
    };
    let lines = [
        ("p50", series(|p| p.p50_us), BLUE),
        ("p99", series(|p| p.p99_us), RED),
        ("p99.9", series(|p| p.p999_us), MAGENTA),
    ];
    let x_max = steps.iter().map(|s| s.offered).fold(1.0f64, f64::max) * 1.05;
    let ys = || lines.iter().flat_map(|(_, l, _)| l.iter().map(|p| p.1));
    let y_max = ys().fold(1.0f64, f64::max) * 2.0;
    let y_min = (ys().fold(f64::INFINITY, f64::min).min(y_max / 10.0) / 2.0).max(0.001);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "torsion load {} → {}: latency by offered rate",
        sweep.mode, sweep.target
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0f64..x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered rate (/s)")
        .y_desc("corrected latency (µs)")
        .x_label_formatter(&|x| super::sweep::human_rate(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (name, points, color) in lines {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    if let (Some(slo), Some(capacity)) = (&sweep.slo, sweep.capacity) {
        chart
            .draw_series(LineSeries::new(
                [(capacity, y_min), (capacity, y_max)],
                BLACK.stroke_width(1),
            ))?
            .label(format!(
                "capacity at {slo}: {}/s",
                super::sweep::human_rate(capacity)
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    }
    finish(chart, &root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_percentiles() {
        assert_eq!(percentile_label(&2.0), "50%");
        assert_eq!(percentile_label(&10.0), "90%");
        assert_eq!(percentile_label(&100.0), "99%");
        assert_eq!(percentile_label(&1000.0), "99.9%");
        assert_eq!(percentile_label(&10000.0), "99.99%");
    }
}
