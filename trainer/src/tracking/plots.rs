//! ROC curve and confusion matrix as PNG and SVG (plotters, with a bundled DejaVu Sans so no
//! system font or fontconfig is needed).

use crate::formats::scores::ScoredWindow;
use crate::model::flights::FlightSummary;
use crate::model::metrics::Confusion;
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn font() {
    REGISTER.call_once(|| {
        // Registration only fails for a malformed font, which the bundled one is not.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

fn draw_roc<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    curve: &[(f64, f64, f64)],
    auc: f64,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{title} (AUC {auc:.3})"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("false-alarm rate")
        .y_desc("recall (true-positive rate)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3))).map_err(err)?;
    chart
        .draw_series(LineSeries::new(curve.iter().map(|p| (p.0, p.1)), BLUE.stroke_width(2)))
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

fn draw_confusion<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, c: &Confusion, title: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    // Categorical axes: x = predicted (0 no alarm, 1 alarm), y = actual (0 faulty, 1 normal).
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((0i32..1).into_segmented(), (0i32..1).into_segmented())
        .map_err(err)?;
    let name = |v: &SegmentValue<i32>, a: &str, b: &str| match v {
        SegmentValue::CenterOf(0) => a.to_string(),
        SegmentValue::CenterOf(1) => b.to_string(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_label_formatter(&|v| name(v, "no alarm", "alarm"))
        .y_label_formatter(&|v| name(v, "faulty", "normal"))
        .x_desc("predicted")
        .y_desc("actual")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    let cells = [(0, 0, c.fn_, "FN"), (1, 0, c.tp, "TP"), (0, 1, c.tn, "TN"), (1, 1, c.fp, "FP")];
    let max = cells.iter().map(|x| x.2).max().unwrap_or(1).max(1) as f64;
    chart
        .draw_series(cells.iter().map(|&(x, y, n, _)| {
            let shade = 0.1 + 0.6 * n as f64 / max;
            Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                BLUE.mix(shade).filled(),
            )
        }))
        .map_err(err)?;
    chart
        .draw_series(cells.iter().map(|&(x, y, n, tag)| {
            Text::new(
                format!("{tag} {n}"),
                (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                ("sans-serif", 26).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
            )
        }))
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg` of the ROC curve into `dir`.
pub fn roc(dir: &Path, stem: &str, curve: &[(f64, f64, f64)], auc: f64, title: &str) -> Result<()> {
    font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    draw_roc(BitMapBackend::new(&png, (640, 520)).into_drawing_area(), curve, auc, title)?;
    draw_roc(SVGBackend::new(&svg, (640, 520)).into_drawing_area(), curve, auc, title)
}

/// Writes `<stem>.png` and `<stem>.svg` of the confusion matrix into `dir`.
pub fn confusion(dir: &Path, stem: &str, c: &Confusion, title: &str) -> Result<()> {
    font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    draw_confusion(BitMapBackend::new(&png, (520, 460)).into_drawing_area(), c, title)?;
    draw_confusion(SVGBackend::new(&svg, (520, 460)).into_drawing_area(), c, title)
}

fn draw_flight<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    flight: &str,
    windows: &[&ScoredWindow],
    summary: &FlightSummary,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(err)?;
    let floor = 1e-4f64;
    let at = |w: &ScoredWindow| w.window.end_s;
    let x0 = windows.first().map_or(0.0, |w| w.window.start_s);
    let x1 = windows.iter().map(|w| at(w)).fold(x0 + 1.0, f64::max);
    let y = |v: f32| f64::from(v).max(floor);
    let ymax =
        windows.iter().map(|w| y(w.verdict.score).max(y(w.verdict.threshold))).fold(floor * 10.0, f64::max);
    let ymin = windows.iter().map(|w| y(w.verdict.score).min(y(w.verdict.threshold))).fold(ymax, f64::min);
    let (ylo, yhi) = (ymin / 2.0, ymax * 2.0);
    let kind = match summary.kind {
        crate::model::flights::FlightKind::Healthy => "healthy".to_string(),
        crate::model::flights::FlightKind::SensorEvent => "sensor event (data quality)".to_string(),
        crate::model::flights::FlightKind::Unlabelled => "unlabelled".to_string(),
        crate::model::flights::FlightKind::EngineFault => format!(
            "{} (severity {:.2})",
            summary.fault_type.as_deref().unwrap_or("engine fault"),
            summary.severity.unwrap_or(0.0)
        ),
    };
    let mut chart = ChartBuilder::on(&area)
        .caption(format!("{flight}: {kind}, {} alert(s)", summary.alerts.len()), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (ylo..yhi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time, s (window end)")
        .y_desc("anomaly score (log)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    // Alert intervals, shaded: from the raising window's end to the clearing one's (or the end).
    chart
        .draw_series(summary.alerts.iter().map(|a| {
            Rectangle::new([(a.raised_s, ylo), (a.cleared_s.unwrap_or(x1), yhi)], RED.mix(0.12).filled())
        }))
        .map_err(err)?
        .label("alert up")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], RED.mix(0.25).filled()));
    if let Some(o) = summary.onset_s {
        chart
            .draw_series(LineSeries::new([(o, ylo), (o, yhi)], RED.stroke_width(2)))
            .map_err(err)?
            .label("labelled fault onset")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(
            windows.iter().map(|w| (at(w), y(w.verdict.threshold))),
            BLACK.stroke_width(1),
        ))
        .map_err(err)?
        .label("threshold")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLACK));
    chart
        .draw_series(LineSeries::new(
            windows.iter().map(|w| (at(w), y(w.verdict.score))),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?
        .label("score")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLUE.stroke_width(2)));
    // Windows without a verdict (invalid, or a no-verdict phase): grey dots.
    chart
        .draw_series(
            windows
                .iter()
                .filter(|w| !w.verdict.judged)
                .map(|w| Circle::new((at(w), y(w.verdict.score)), 3, BLACK.mix(0.4).filled())),
        )
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    area.present().map_err(err)?;
    Ok(())
}

/// Writes `<flight>.png` and `<flight>.svg` into `dir`: the score over time with the applied
/// threshold, the alert intervals, the labelled onset and the windows without verdict.
pub fn flight(dir: &Path, flight: &str, windows: &[&ScoredWindow], summary: &FlightSummary) -> Result<()> {
    font();
    let png = dir.join(format!("{flight}.png"));
    let svg = dir.join(format!("{flight}.svg"));
    draw_flight(BitMapBackend::new(&png, (900, 420)).into_drawing_area(), flight, windows, summary)?;
    draw_flight(SVGBackend::new(&svg, (900, 420)).into_drawing_area(), flight, windows, summary)
}
