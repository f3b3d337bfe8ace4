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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
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
